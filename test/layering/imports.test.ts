/**
 * The source layering: no module of src/ imports itself back through a chain of imports
 * (type-only imports included, so the module graph stays a DAG a reader can follow bottom
 * up). A cycle is reported as the modules on it.
 */
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join, relative } from "node:path";

const SRC = join(__dirname, "../../src");

function sources(dir: string, out: string[] = []): string[] {
  for (const f of readdirSync(dir)) {
    const p = join(dir, f);
    if (statSync(p).isDirectory()) sources(p, out);
    else if (p.endsWith(".ts")) out.push(p);
  }
  return out;
}

/** Each module's local imports and re-exports, resolved to files. */
function importGraph(files: readonly string[]): Map<string, string[]> {
  const g = new Map<string, string[]>();
  for (const f of files) {
    const deps: string[] = [];
    for (const m of readFileSync(f, "utf8").matchAll(/^(?:import|export)[^'"]*from\s+["'](\.[^"']+)["']/gm)) {
      const t = join(dirname(f), m[1]);
      const hit = [`${t}.ts`, join(t, "index.ts")].find((c) => existsSync(c));
      if (hit) deps.push(hit);
    }
    g.set(f, deps);
  }
  return g;
}

/** Strongly connected components with more than one module (Tarjan). */
function cycles(g: Map<string, string[]>): string[][] {
  let next = 0;
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const out: string[][] = [];
  const visit = (v: string): void => {
    index.set(v, next);
    low.set(v, next++);
    stack.push(v);
    onStack.add(v);
    for (const w of g.get(v) ?? []) {
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v)!, index.get(w)!));
    }
    if (low.get(v) === index.get(v)) {
      const c: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        onStack.delete(w);
        c.push(relative(SRC, w));
      } while (w !== v);
      if (c.length > 1) out.push(c.sort());
    }
  };
  for (const v of g.keys()) if (!index.has(v)) visit(v);
  return out;
}

test("src/ has no import cycles", () => {
  expect(cycles(importGraph(sources(SRC)))).toEqual([]);
});

test("the cycle finder finds a planted cycle", () => {
  const g = new Map([
    [join(SRC, "a.ts"), [join(SRC, "b.ts")]],
    [join(SRC, "b.ts"), [join(SRC, "a.ts")]],
    [join(SRC, "c.ts"), [join(SRC, "a.ts")]],
  ]);
  expect(cycles(g)).toEqual([["a.ts", "b.ts"]]);
});
