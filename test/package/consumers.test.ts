/**
 * Issue 14's acceptance, in Node: from `npm pack`, an ESM consumer, a CommonJS consumer
 * and a strict TypeScript consumer (default lib, so DOM too; no skipLibCheck) compile and
 * run in temp dirs, and bundles made with esbuild --platform=node find the Wasm core.
 */
import { execFileSync } from "node:child_process";
import { copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ROOT, consumer, pack, runNode, type Packed } from "./packed";

// Installs and compiles in temp dirs: slow on a loaded machine, not a timing assertion.
jest.setTimeout(300_000);

const TRACE = join(ROOT, "test/conformance/linux-6.1/basics");
const ESBUILD = join(ROOT, "node_modules/.bin/esbuild");
const TSC = join(ROOT, "node_modules/typescript/bin/tsc");

/** The consumer's program, as ESM or CommonJS: every line is something a user does first. */
function program(kind: "esm" | "cjs"): string {
  const head =
    kind === "esm"
      ? `import { readFileSync } from "node:fs";\nimport * as vfio from "vfio-sim";\n`
      : `const { readFileSync } = require("node:fs");\nconst vfio = require("vfio-sim");\n`;
  return `${head}
async function main() {
  const out = {};
  // The synchronous Node path: no set-up.
  out.replay = vfio.replayTrace(readFileSync("basics.trace", "utf8")) === readFileSync("basics.out", "utf8");
  const proc = vfio.createVfioProcess();
  const h = vfio.Type1Handle.open(proc);
  out.open = h.ok;
  const bad = h.ok ? h.value.mapDma({ iova: 0n, vaddr: 0n, size: 0n }) : null;
  out.badMap = bad && !bad.ok ? bad.errnoName : null;
  // The asynchronous path, as in a browser.
  const m = await vfio.init();
  const core = await vfio.loadCore(m);
  out.alloc = core.alloc(64) > 0;
  out.shared = vfio.createVfioProcess(undefined, undefined, core).core === core;
  console.log(JSON.stringify(out));
}
main().catch((e) => { console.error(e); process.exit(1); });
`;
}

const EXPECTED = { replay: true, open: true, badMap: "EINVAL", alloc: true, shared: true };

let packed: Packed;
let work: string;
const dirs: string[] = [];

beforeAll(() => {
  work = mkdtempSync(join(tmpdir(), "vfio-sim-pack-"));
  dirs.push(work);
  packed = pack(work);
});
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function setUp(type: "module" | "commonjs"): string {
  const dir = consumer(packed.tarball, type);
  dirs.push(dir);
  copyFileSync(`${TRACE}.trace`, join(dir, "basics.trace"));
  copyFileSync(`${TRACE}.out`, join(dir, "basics.out"));
  return dir;
}

test("the tarball ships both builds, both cores, the trace format, a LICENSE, and no global declarations", () => {
  const files = new Set(packed.files);
  for (const f of ["LICENSE", "README.md", "dist/index.js", "dist/index.d.ts", "dist/esm/index.js", "dist/esm/index.d.ts", "dist/esm/package.json", "dist/wasm/core.wasm", "dist/esm/wasm/core.wasm", "dist/cli/main.js", "src/trace/trace-format.md"]) {
    expect([f, files.has(f)]).toEqual([f, true]);
  }
  const pkg = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")) as Record<string, unknown> & { exports: Record<string, unknown> };
  for (const k of ["repository", "homepage", "bugs", "keywords", "license"]) expect([k, pkg[k] !== undefined]).toEqual([k, true]);
  // Every target of the exports map is in the tarball.
  const targets = (v: unknown): string[] => (typeof v === "string" ? [v] : Object.values(v as object).flatMap(targets));
  for (const t of Object.values(pkg.exports).flatMap(targets)) expect([t, files.has(t.replace(/^\.\//, ""))]).toEqual([t, true]);
  // A consumer's DOM lib declares WebAssembly; so must nothing we ship (TS2300).
  const dir = consumer(packed.tarball, "commonjs");
  dirs.push(dir);
  const root = join(dir, "node_modules/vfio-sim");
  for (const f of packed.files.filter((p) => p.endsWith(".d.ts"))) expect([f, /declare global|namespace WebAssembly/.test(readFileSync(join(root, f), "utf8"))]).toEqual([f, false]);
  // Source maps resolve: every source is embedded or shipped.
  const maps = packed.files.filter((p) => p.endsWith(".js.map"));
  expect(maps.length).toBeGreaterThan(50);
  for (const f of maps) {
    const map = JSON.parse(readFileSync(join(root, f), "utf8")) as { sources: string[]; sourcesContent?: Array<string | null> };
    map.sources.forEach((s, i) => expect([f, s, typeof map.sourcesContent?.[i] === "string" || existsSync(join(root, f, "..", s))]).toEqual([f, s, true]));
  }
});

test("an ESM consumer runs", () => {
  const dir = setUp("module");
  writeFileSync(join(dir, "main.js"), program("esm"));
  expect(JSON.parse(runNode(dir, "main.js"))).toEqual(EXPECTED);
});

test("a CommonJS consumer runs", () => {
  const dir = setUp("commonjs");
  writeFileSync(join(dir, "main.js"), program("cjs"));
  expect(JSON.parse(runNode(dir, "main.js"))).toEqual(EXPECTED);
});

test("a strict TypeScript consumer (default lib, no skipLibCheck) compiles, as ESM and as CommonJS, and runs", () => {
  const dir = setUp("module");
  writeFileSync(
    join(dir, "tsconfig.json"),
    JSON.stringify({ compilerOptions: { target: "ES2022", module: "nodenext", moduleResolution: "nodenext", strict: true, outDir: "out", types: [] }, files: ["main.ts", "require.cts"] }),
  );
  writeFileSync(
    join(dir, "main.ts"),
    `import { createVfioProcess, Type1Handle, init, loadCore, replayTrace, runMigration, defaultScenario, type KernelResult, type WasmModule } from "vfio-sim";
const m: WasmModule = await init();
const h: KernelResult<Type1Handle> = Type1Handle.open(createVfioProcess(undefined, undefined, m));
const r = h.ok ? h.value.mapDma({ iova: 0n, vaddr: 0n, size: 0n }) : null;
const errno: string | null = r !== null && !r.ok ? r.errnoName : null;
const core = await loadCore(m);
const scenario = defaultScenario("plain-type1");
void runMigration;
void scenario;
console.log(JSON.stringify({ open: h.ok, errno, replay: typeof replayTrace("case x\\n") === "string", alloc: core.alloc(8) > 0 }));
`,
  );
  writeFileSync(
    join(dir, "require.cts"),
    `import vfio = require("vfio-sim");
const h = vfio.Type1Handle.open(vfio.createVfioProcess());
console.log(JSON.stringify({ open: h.ok }));
`,
  );
  execFileSync(process.execPath, [TSC, "-p", dir], { cwd: dir, encoding: "utf8" });
  expect(JSON.parse(runNode(dir, "out/main.js"))).toEqual({ open: true, errno: "EINVAL", replay: true, alloc: true });
  expect(JSON.parse(runNode(dir, "out/require.cjs"))).toEqual({ open: true });
});

test("esbuild --platform=node bundles (ESM and CommonJS) run with core.wasm beside them", () => {
  for (const [type, kind, format] of [["module", "esm", "esm"], ["commonjs", "cjs", "cjs"]] as const) {
    const dir = setUp(type);
    writeFileSync(join(dir, "main.js"), program(kind));
    execFileSync(ESBUILD, ["main.js", "--bundle", "--platform=node", `--format=${format}`, "--outfile=bundle/app.js", "--log-level=warning"], { cwd: dir, encoding: "utf8" });
    copyFileSync(join(dir, "node_modules/vfio-sim/dist/esm/wasm/core.wasm"), join(dir, "bundle/core.wasm"));
    // The bundle must not reach back into node_modules for the core.
    rmSync(join(dir, "node_modules"), { recursive: true, force: true });
    copyFileSync(join(dir, "basics.trace"), join(dir, "bundle/basics.trace"));
    copyFileSync(join(dir, "basics.out"), join(dir, "bundle/basics.out"));
    expect([format, JSON.parse(runNode(join(dir, "bundle"), "app.js"))]).toEqual([format, EXPECTED]);
  }
});
