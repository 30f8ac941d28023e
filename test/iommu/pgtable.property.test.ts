/**
 * Property tests: random map / unmap / DMA write / harvest sequences on each page-table
 * format against the naive reference (test/iommu/pgtable-reference.ts). After every
 * step: translations and leaf sizes of every mapped page and of random unmapped ones,
 * unmapped byte counts, harvested bitmaps (with and without NO_CLEAR), and the number of
 * table pages (empty tables are freed).
 */
import { PT_FORMATS, PtFormat } from "../../src/iommu/pgtable";
import { runSequence, counters } from "./pgtable-property";

const SEEDS = 6;
const STEPS = 150;

describe.each(PT_FORMATS.map((f) => [f]))("page table %s against the reference", (format) => {
  for (let seed = 1; seed <= SEEDS; seed++) {
    test(`seed ${seed}: ${STEPS} random steps`, () => runSequence(format as PtFormat, seed, STEPS));
  }
});

afterAll(() => {
  // Visible in verbose runs: how much was checked.
  if (process.env.VFIO_SIM_VERBOSE) console.log(`pgtable property: ${counters.sequences} sequences, ${counters.steps} steps`);
});
