/**
 * `vfio-sim live-update`: each scenario's exit status follows its ledger check, the text
 * shows the translations moving from the old VMM's addresses to the new one's, and the
 * JSON carries the same run.
 */
import { main } from "../../src/cli/main";
import { runLiveUpdate, SCENARIOS } from "../../src/cli/commands/live-update";
import { DEFAULT_LAYOUT } from "../../src/vhost/live-update";

function io() {
  const out: string[] = [];
  const err: string[] = [];
  return { out, err, io: { out: (s: string) => out.push(s), err: (s: string) => err.push(s), isTTY: false } };
}

test("the RFC's flow: translations move to the new VMM, every write lands, exit 0", async () => {
  const b = io();
  expect(await main(["live-update"], b.io)).toBe(0);
  const text = b.out.join("");
  expect(text).toMatch(/not Linux's: opt-in/);
  expect(text).toMatch(/Ledger check: 0 bytes lost, 0 stray, 0 writes held -> OK/);
  for (const r of DEFAULT_LAYOUT) {
    const before = `0x${(0x7f00_0000_0000 + r.offset).toString(16)}`;
    const after = `0x${(0x7e80_0000_0000 + r.offset).toString(16)}`;
    expect(text).toMatch(new RegExp(`${before} +${after} +${after}`));
  }
  const sample = /wrote ([0-9a-f ]+)\n  the new VMM reads at 0x[0-9a-f]+: ([0-9a-f ]+)\n/.exec(text)!;
  expect(sample[2]).toBe(sample[1]);
});

test.each([
  ["ok", 0],
  ["no-suspend", 1],
  ["remap-mismatch", 0],
  ["wrong-remap", 1],
  ["old-exits-early", 0],
  ["short-mapping", 0],
] as const)("scenario %s exits %d, as its ledger check says", async (scenario, status) => {
  const r = runLiveUpdate(scenario, 3, 6);
  expect(r.ok).toBe(status === 0);
  expect(r.writes.done + r.writes.held).toBe(r.writes.issued);
  expect(await main(["live-update", "--scenario", scenario, "--seed", "3", "--writes", "6"], io().io)).toBe(status);
  if (scenario === "remap-mismatch") expect(r.steps.filter((s) => s.result === "-1 EFAULT")).toHaveLength(2);
  if (scenario === "short-mapping") expect(r.writes.faults).toBeGreaterThan(0);
  if (scenario === "no-suspend") expect(r.check.lost).toBeGreaterThan(0);
});

test("--json, --help and usage errors", async () => {
  const j = io();
  expect(await main(["live-update", "--json", "--scenario", "wrong-remap"], j.io)).toBe(1);
  const parsed = JSON.parse(j.out.join(""));
  expect(parsed.schema).toBe("vfio-sim.live-update/1");
  expect(parsed.scenario).toBe("wrong-remap");
  expect(parsed.translations).toHaveLength(DEFAULT_LAYOUT.length);
  const h = io();
  expect(await main(["live-update", "--help"], h.io)).toBe(0);
  for (const s of SCENARIOS) expect(h.out.join("")).toContain(s);
  for (const bad of [["--scenario", "nope"], ["--seed", "-1"], ["--writes", "0"], ["--bogus"]]) {
    const e = io();
    expect(await main(["live-update", ...bad], e.io)).toBe(2);
    expect(e.err.join("")).toMatch(/vfio-sim live-update: /);
  }
});
