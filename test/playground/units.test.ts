/**
 * The playground's pure parts, in Node: URL sharing (share.ts), the migration form
 * (scenario-form.ts) and the output comparisons (compare.ts). The page itself is
 * playground.test.ts.
 */
import { readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { decodeHash, encodeHash, packText, unpackText } from "../../src/playground/share";
import { formMeta, presetForm, scenarioFromForm } from "../../src/playground/scenario-form";
import { differingLines, matchRecording } from "../../src/playground/compare";
import { PRESETS, validateScenario } from "../../src/migrate/scenario";

const DIR = join(__dirname, "..", "conformance", "linux-6.12-iommufd");

describe("share", () => {
  test("every recorded iommufd trace survives the URL hash byte for byte", async () => {
    const files = readdirSync(DIR).filter((f) => f.endsWith(".trace"));
    expect(files.length).toBeGreaterThan(0);
    for (const f of files) {
      const trace = readFileSync(join(DIR, f), "utf8");
      const hash = await encodeHash({ trace });
      expect(hash).toMatch(/^#trace=[A-Za-z0-9_-]+$/);
      expect(await decodeHash(hash)).toEqual({ trace });
    }
  });

  test("compresses: the largest trace's link is much shorter than the trace", async () => {
    const trace = readFileSync(join(DIR, "selftest-iommufd-mock_domain.trace"), "utf8");
    expect((await packText(trace)).length).toBeLessThan(trace.length / 4);
  });

  test("non-ASCII text and both parts together", async () => {
    const state = { trace: "case é # ünïcode\n", scenario: JSON.stringify(presetForm("all-kinds")) };
    expect(await decodeHash(await encodeHash(state))).toEqual(state);
  });

  test("a mangled link decodes to nothing instead of throwing", async () => {
    const good = await packText("map iova=0 size=0x1000\n");
    expect(await unpackText(good.slice(0, good.length - 3))).toBeNull();
    expect(await unpackText("not base64!")).toBeNull();
    expect(await decodeHash("#trace=%%%&other=1")).toEqual({});
    expect(await decodeHash("")).toEqual({});
  });
});

describe("scenario form", () => {
  test("every preset's form gives a valid scenario with the preset's devices", () => {
    const meta = formMeta();
    expect(Object.keys(meta.presets)).toEqual(Object.keys(PRESETS));
    for (const [name, p] of Object.entries(PRESETS)) {
      const r = scenarioFromForm(meta.presets[name].form);
      if (!("scenario" in r)) throw new Error(`${name}: ${r.errors.join("; ")}`);
      expect(validateScenario(r.scenario)).toEqual([]);
      expect(r.scenario.devices.map((d) => [d.kind, d.name])).toEqual(p.devices.map((d) => [d.kind, d.name]));
      expect(r.scenario.guestBytes).toBe(8 * 2 ** 30);
    }
  });

  test("default workloads shrink to fit a small guest; a rate the user gave is kept", () => {
    const f = presetForm("default");
    const r = scenarioFromForm({ ...f, guest: "1G", devices: [{ ...f.devices[0], rate: "100MB/s" }, f.devices[1]] });
    if (!("scenario" in r)) throw new Error(r.errors.join("; "));
    for (const d of r.scenario.devices) expect(d.workload.workingSet).toBeLessThanOrEqual(2 ** 29);
    expect(r.scenario.devices[0].workload.rate).toBe(100e6);
  });

  test("one message per mistake", () => {
    const f = presetForm("default");
    expect(scenarioFromForm({ ...f, guest: "lots" })).toEqual({ errors: ["bad guest size: 'lots'"] });
    expect(scenarioFromForm({ ...f, profile: "linux-5.4" })).toEqual({ errors: ["unknown profile 'linux-5.4' (linux-6.1, linux-6.12, mainline)"] });
    expect(scenarioFromForm({ ...f, devices: [] })).toEqual({ errors: ["at least one device is needed"] });
    const twice = scenarioFromForm({ ...f, devices: [f.devices[0], f.devices[0]] });
    expect(twice).toEqual({ errors: ["device name 'nic0' is used twice"] });
  });
});

describe("compare", () => {
  test("the first differing line against a recording", () => {
    expect(matchRecording("a\nb\nc\n", "a\nb\nc\n")).toEqual({ same: true, firstDiff: 0, lines: 3 });
    expect(matchRecording("a\nX\nc\n", "a\nb\nc\n")).toEqual({ same: false, firstDiff: 2, lines: 3 });
    expect(matchRecording("a\nb\n", "a\nb\nc\n")).toEqual({ same: false, firstDiff: 3, lines: 3 });
  });

  test("lines where the profiles disagree", () => {
    expect([...differingLines(["a\nb\nc\n", "a\nB\nc\n", "a\nb\nc\n"])]).toEqual([1]);
    expect([...differingLines(["a\n", "a\nb\n"])]).toEqual([1, 2]);
    expect(differingLines(["x\n"]).size).toBe(0);
  });
});
