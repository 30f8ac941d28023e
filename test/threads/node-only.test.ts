import { readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";

// worker_threads is Node-only: it may appear in src/threads/ alone, and only the CLI (Node
// too) may import src/threads/, so every library module a browser loads stays free of it.
const SRC = join(__dirname, "../../src");

function sources(dir: string, out: string[] = []): string[] {
  for (const f of readdirSync(dir)) {
    const p = join(dir, f);
    if (statSync(p).isDirectory()) sources(p, out);
    else if (p.endsWith(".ts")) out.push(p);
  }
  return out;
}

test("worker_threads is used in src/threads/ only, and src/threads/ is imported by the CLI only", () => {
  const files = sources(SRC).map((f) => ({ rel: relative(SRC, f), text: readFileSync(f, "utf8") }));
  const usesWorkers = files.filter((f) => /["']node:worker_threads["']|["']worker_threads["']/.test(f.text)).map((f) => f.rel);
  expect(usesWorkers.length).toBeGreaterThan(0);
  expect(usesWorkers.filter((r) => !r.startsWith("threads/"))).toEqual([]);
  // An import that resolves to src/threads (process/threads.ts, the simulated threads of
  // the deterministic scheduler, is another module and may be imported anywhere).
  const THREADS = join(SRC, "threads");
  const importsThreads = files
    .filter((f) => !f.rel.startsWith("threads/"))
    .filter((f) => [...f.text.matchAll(/from\s+["'](\.{1,2}\/[^"']*)["']/g)].some((m) => resolve(dirname(join(SRC, f.rel)), m[1]).startsWith(THREADS + "/") || resolve(dirname(join(SRC, f.rel)), m[1]) === THREADS))
    .map((f) => f.rel);
  expect(importsThreads.filter((r) => !r.startsWith("cli/"))).toEqual([]);
  expect(importsThreads.length).toBeGreaterThan(0);
});
