import { readdirSync, readFileSync, statSync } from "node:fs";
import { join, relative } from "node:path";

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
  const importsThreads = files.filter((f) => !f.rel.startsWith("threads/") && /from\s+["'][./]*threads["']/.test(f.text)).map((f) => f.rel);
  expect(importsThreads.filter((r) => !r.startsWith("cli/"))).toEqual([]);
  expect(importsThreads.length).toBeGreaterThan(0);
});
