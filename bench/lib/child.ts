/**
 * One benchmark process: `tsx bench/lib/child.ts SUITE [maxTime]` times the suite once and
 * prints its ProcessRun as one JSON line on stdout (progress goes to stderr).
 */
import { runOnce } from "./harness";
import { loadSuite } from "./suites";

const [name, maxTime] = process.argv.slice(2);
const suite = loadSuite(name);
const run = runOnce(suite, maxTime ? Number(maxTime) : undefined);
process.stdout.write(JSON.stringify(run) + "\n");
