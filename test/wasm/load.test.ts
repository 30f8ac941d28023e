import { readFileSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { WasmCore, isWasmCore } from "../../src/wasm/core";
import { isWasmModule } from "../../src/wasm/webassembly-types";
import { init, loadCore } from "../../src/wasm/load";
import { compiledCore, defaultCoreModule, loadedCoreModule } from "../../src/wasm/module";
import { createVfioProcess, Type1Handle } from "../../src/type1";
import { replayTrace } from "../../src/trace";
import { runMigration, defaultScenario } from "../../src/migrate";

// The ways a core reaches the model (issue 14): synchronously from the build in Node, and
// asynchronously from bytes, a Response, a file URL or a compiled module; every entry
// point accepts a module or a WasmCore.
const WASM = join(__dirname, "../../build/core.wasm");
const bytes = (): Uint8Array => readFileSync(WASM);

/** A core works: allocates, and its kernels run on what it allocated. */
function works(core: WasmCore): void {
  const p = core.alloc(64);
  expect(p).toBeGreaterThan(0);
  core.x.setRange(p, 3, 10);
  expect(core.x.popcountRange(p, 0, 64 * 8)).toBe(10);
  core.free(p);
}

test("Node loads the default module synchronously, once", () => {
  const m = defaultCoreModule();
  expect(isWasmModule(m)).toBe(true);
  expect(compiledCore()).toBe(m);
  expect(new WasmCore().module).toBe(m);
  works(new WasmCore());
  // A path compiles that file afresh, without touching the default.
  const other = compiledCore(WASM);
  expect(other).not.toBe(m);
  expect(compiledCore()).toBe(m);
});

test("init() compiles from bytes, a Response, a promise of one, a file URL and a module, and sets the default", async () => {
  const before = loadedCoreModule();
  try {
    for (const source of [bytes(), bytes().buffer, new Response(bytes(), { headers: { "content-type": "application/wasm" } }), Promise.resolve(new Response(bytes())), pathToFileURL(WASM), WASM]) {
      const m = await init(source as Parameters<typeof init>[0]);
      expect(isWasmModule(m)).toBe(true);
      expect(loadedCoreModule()).toBe(m);
      expect(new WasmCore().module).toBe(m);
    }
    const m = compiledCore(WASM);
    expect(await init(m)).toBe(m);
    const core = await loadCore();
    works(core);
  } finally {
    if (before) await init(before);
  }
});

test("init() rejects what is not a core, and a missing file names it", async () => {
  await expect(init(42 as never)).rejects.toThrow(TypeError);
  await expect(init(join(__dirname, "no-such.wasm"))).rejects.toThrow(/no-such\.wasm/);
  await expect(init(new Uint8Array([0, 1, 2, 3]))).rejects.toThrow();
});

test("WasmCore.from: a core is shared, a module instantiated, nothing else accepted", () => {
  const core = new WasmCore();
  expect(WasmCore.from(core)).toBe(core);
  const m = compiledCore(WASM);
  const fromModule = WasmCore.from(m);
  expect(fromModule.module).toBe(m);
  expect(fromModule).not.toBe(core);
  expect(isWasmCore(fromModule)).toBe(true);
  expect(isWasmCore({ alloc() {}, x: {} })).toBe(false);
  expect(() => WasmCore.from({} as never)).toThrow(TypeError);
});

test("every high-level entry accepts a module or a WasmCore", () => {
  const m = compiledCore(WASM);
  const core = new WasmCore(m);
  const byModule = createVfioProcess(undefined, undefined, m);
  expect(byModule.core.module).toBe(m);
  expect(createVfioProcess(undefined, undefined, core).core).toBe(core);
  const h = Type1Handle.open(createVfioProcess(undefined, undefined, core));
  expect(h.ok).toBe(true);

  const trace = readFileSync(join(__dirname, "../conformance/linux-6.1/basics.trace"), "utf8");
  const expected = readFileSync(join(__dirname, "../conformance/linux-6.1/basics.out"), "utf8");
  expect(replayTrace(trace, { core: m })).toBe(expected);
  expect(replayTrace(trace, { core })).toBe(expected);

  // A small guest: the point is which core runs, not the migration.
  const base = defaultScenario("plain-type1");
  const devices = base.devices.map((d) => ({ ...d, workload: { ...d.workload, workingSet: 1 << 20, hotSet: 1 << 18 } }));
  const scenario = { ...base, guestBytes: 1 << 28, devices };
  const a = runMigration(scenario, { core: m });
  const b = runMigration(scenario, { core });
  expect("result" in a && "result" in b).toBe(true);
  if ("result" in a && "result" in b) expect(a.result.rounds.length).toBe(b.result.rounds.length);
});
