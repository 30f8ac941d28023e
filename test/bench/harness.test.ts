import { formatTable, median, ProcessRun, summarize } from "../../bench/lib/harness";

const run = (copyMean: number, packMean: number): ProcessRun => ({
  suite: "t",
  extras: {},
  cases: [
    { group: "g", name: "copy", bytes: 1e9, baseline: true, mean: copyMean, rme: 1, samples: 5 },
    { group: "g", name: "pack", bytes: 1e9, baseline: false, mean: packMean, rme: 1, samples: 5 },
  ],
});

describe("benchmark statistics", () => {
  test("median of odd and even lists", () => {
    expect(median([3, 1, 2])).toBe(2);
    expect(median([4, 1, 3, 2])).toBe(2.5);
  });

  test("ratios are taken within each process before the median, so a slow process does not skew them", () => {
    // Process 2 is uniformly 4x slower (host noise): its ratio is still 0.5.
    const rows = summarize([run(1, 2), run(4, 8), run(1, 2)]);
    const pack = rows.find((r) => r.name === "pack")!;
    expect(pack.ratio).toBeCloseTo(0.5);
    expect(pack.gbps).toBeCloseTo(0.5); // median of 0.5, 0.125, 0.5
    expect(pack.gbpsRuns).toEqual([0.5, 0.125, 0.5]);
    expect(rows.find((r) => r.name === "copy")!.ratio).toBe(1);
  });

  test("the table names the baseline and shows every case", () => {
    const text = formatTable(summarize([run(1, 2)]));
    expect(text).toMatch(/copy \(baseline\)/);
    expect(text.split("\n").filter((l) => l.startsWith("g ")).length).toBe(2);
  });
});
