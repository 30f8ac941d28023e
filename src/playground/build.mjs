#!/usr/bin/env node
/**
 * Builds the playground (`npm run playground`): a static site in dist/playground/ that runs
 * the library in the browser. No server logic; any static file server can serve it
 * (module workers and fetch() need http:, not file:).
 *
 *   index.html         the page (src/playground/index.html)
 *   main.js            the page's script (main.ts, DOM only)
 *   worker.js          the library in a module worker (worker.ts)
 *   core.wasm          build/core.wasm (npm run build:wasm), fetched by the worker
 *   examples.json      a few recorded traces of test/conformance/ with their .out files
 *   trace-format.md    the trace format (src/trace/trace-format.md)
 *
 * Usage: node src/playground/build.mjs [--outdir DIR]
 */
import { build } from "esbuild";
import { copyFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const HERE = dirname(fileURLToPath(import.meta.url));
const ROOT = resolve(HERE, "..", "..");
const CONFORMANCE = join(ROOT, "test", "conformance");

/**
 * The shipped examples (each replays in well under a second per profile): each trace and the directories holding its recordings, with the
 * kernel profile each directory was recorded on (as test/conformance/*.test.ts replays
 * them). The iommufd recordings come from the 6.12 test kernel.
 */
const EXAMPLES = [
  { name: "basics", title: "type1: GET_INFO, CHECK_EXTENSION, MAP/UNMAP edge cases, dirty tracking", dirs: ["linux-6.1", "linux-6.12"] },
  { name: "bitmaps", title: "type1: dirty bitmaps of UNMAP_DMA and GET_BITMAP", dirs: ["linux-6.1", "linux-6.12"] },
  { name: "hunt-ro-vma", title: "type1: read-only pins of read-only, never-written and huge-zero memory", dirs: ["linux-6.1", "linux-6.12"] },
  { name: "memlock-uncharged-pins", title: "type1: RLIMIT_MEMLOCK and pages pinned without a charge", dirs: ["linux-6.1", "linux-6.12"] },
  { name: "hunt-batch-faults", title: "type1: a map failing on RLIMIT_MEMLOCK mid-way (vfio_batch)", dirs: ["linux-6.1", "linux-6.12"] },
  { name: "smoke-mock", title: "iommufd (mock world): IOAS, mock domain, dirty tracking", dirs: ["linux-6.12-iommufd"] },
  { name: "edu-cdev", title: "iommufd (edu world): the VFIO cdev of an emulated PCI device", dirs: ["linux-6.12-iommufd"] },
];
const PROFILE_OF_DIR = { "linux-6.1": "linux-6.1", "linux-6.12": "linux-6.12", "linux-6.12-iommufd": "linux-6.12" };

function examples() {
  return EXAMPLES.map(({ name, title, dirs }) => {
    const trace = readFileSync(join(CONFORMANCE, dirs[0], `${name}.trace`), "utf8");
    const recordings = {};
    for (const d of dirs) {
      if (readFileSync(join(CONFORMANCE, d, `${name}.trace`), "utf8") !== trace) throw new Error(`${d}/${name}.trace differs from ${dirs[0]}/${name}.trace`);
      recordings[PROFILE_OF_DIR[d]] = readFileSync(join(CONFORMANCE, d, `${name}.out`), "utf8");
    }
    return { name, title, trace, recordings };
  });
}

async function main() {
  const i = process.argv.indexOf("--outdir");
  const out = resolve(i > 0 ? process.argv[i + 1] : join(ROOT, "dist", "playground"));
  const wasm = join(ROOT, "build", "core.wasm");
  if (!existsSync(wasm)) throw new Error(`${wasm} is missing: run \`npm run build:wasm\` first`);
  mkdirSync(out, { recursive: true });
  await build({
    entryPoints: { main: join(HERE, "main.ts"), worker: join(HERE, "worker.ts") },
    outdir: out,
    bundle: true,
    format: "esm",
    platform: "browser",
    target: "es2022",
    sourcemap: true,
    logLevel: "warning",
  });
  copyFileSync(join(HERE, "index.html"), join(out, "index.html"));
  copyFileSync(wasm, join(out, "core.wasm"));
  copyFileSync(join(ROOT, "src", "trace", "trace-format.md"), join(out, "trace-format.md"));
  writeFileSync(join(out, "examples.json"), JSON.stringify(examples()));
  console.log(`playground: ${out}/index.html (serve the folder over http, e.g. \`npm run playground:serve\`)`);
}

main().catch((e) => {
  console.error(`playground build failed: ${e.message}`);
  process.exit(1);
});
