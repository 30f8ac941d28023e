/**
 * What the same-process A/B scripts (bench/ab-mapdma.cjs, bench/ab-mapdma-direct.cjs, bench/ab-pairs.cjs)
 * share: their command line (two built dist folders and a mode), the geometry (64,000
 * two-page mappings from 4 GiB, batches of 1,000), the batch's requests (appended above the
 * fill, or into random free odd slots of an every-other-slot fill) and the statistics.
 */
"use strict";
const { resolve } = require("node:path");

const PAGE = 4096n;
const MAP = 2n * PAGE;
const N = 64000;
const K = 1000;
const BASE = 1n << 32n;

/** Both builds loaded from `BASE_DIST NEW_DIST [mode]` (exit 2 with a usage line otherwise). */
function loadSides(script, modes) {
  const [baseDir, newDir, mode = modes[0]] = process.argv.slice(2);
  if (!baseDir || !newDir || !modes.includes(mode)) {
    process.stderr.write(`usage: node bench/${script} BASE_DIST NEW_DIST [${modes.join("|")}]\n`);
    process.exit(2);
  }
  return { mode, sides: { base: require(resolve(baseDir, "index.js")), new: require(resolve(newDir, "index.js")) } };
}

/** A process with a type1 container (TYPE1v2, vtd) and guest memory for 2 * N + K mappings. */
function openSide(lib, name) {
  const proc = lib.createVfioProcess(lib.vtdPlatform());
  const opened = lib.Type1Handle.open(proc);
  if (!opened.ok) throw new Error(`${name}: open: ${opened.errnoName}`);
  const guest = BigInt(proc.mmap(undefined, BigInt(2 * N + K) * MAP).ret);
  return { proc, h: opened.value, guest };
}

let seed = 12345;
/** A random odd slot (free between an every-other-slot fill), the same sequence in every run. */
const freeSlot = () => 2 * ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) % N) + 1;

/** One batch of MAP_DMA requests (plus `extra` fields) for a side whose guest memory starts at `guest`. */
function batchRequests(mode, guest, extra = {}) {
  const at = (slot) => ({ ...extra, iova: BASE + BigInt(slot) * MAP, vaddr: guest + BigInt(slot) * MAP, size: MAP });
  if (mode !== "holes") return Array.from({ length: K }, (_, i) => at(N + i));
  const slots = new Set();
  while (slots.size < K) slots.add(freeSlot());
  return [...slots].map(at);
}

const mean = (xs) => xs.reduce((a, b) => a + b, 0) / xs.length;
const median = (xs) => [...xs].sort((a, b) => a - b)[xs.length >> 1];
const r2 = (x) => Math.round(x * 100) / 100;

module.exports = { PAGE, MAP, N, K, BASE, loadSides, openSide, batchRequests, mean, median, r2 };
