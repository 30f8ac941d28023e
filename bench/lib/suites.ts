/** The benchmark suites `npm run bench` knows, by name. Add a suite here once. */
import type { BenchSuite } from "./harness";
import bitmap from "../suites/bitmap";
import pgtable from "../suites/pgtable";
import vhost from "../suites/vhost";
import type1 from "../suites/type1";
import permap from "../suites/permap";
import threads from "../suites/threads";
import migrate from "../suites/migrate";

export const SUITES: Record<string, BenchSuite> = {
  bitmap,
  pgtable,
  vhost,
  type1,
  permap,
  threads,
  migrate,
};

/** Looks a suite up by name; throws a message listing the names otherwise. */
export function loadSuite(name: string): BenchSuite {
  const s = SUITES[name];
  if (!s) throw new Error(`unknown suite '${name}'; known: ${Object.keys(SUITES).join(", ")}`);
  return s;
}
