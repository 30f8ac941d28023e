// Table pages for I/O page tables: 4 KiB-aligned, zeroed, recycled through a free list.
//
// Pages are carved from linear memory obtained with memory.grow (64 KiB Wasm pages are
// naturally 4 KiB aligned, so no space is lost to alignment). heap.alloc is not used
// because it traps when memory cannot grow, and a trap in the middle of a map would leave
// a half-written table: here running out is a 0 return that the walker turns into
// -ENOMEM and unwinds. TLSF tolerates memory.grow calls it did not make (it only adds the
// region it grew itself), so both allocators share the instance.
//
// Freed tables are not reused at once: like Linux's iommu_iotlb_gather freelist they wait
// on a gather until the IOTLB has been flushed (gatherRelease), because a device may still
// hold a cached pointer to a PTE inside them. The link word of a waiting or free page is
// its slot 0; a page-aligned pointer has bit 0 and bits 1..11 clear, so it reads as "not
// present" in every format modelled.

import { allocFault, FAULT_TABLE_PAGE } from "../runtime/fault";

const PAGE: usize = 4096;
const REFILL_WASM_PAGES: i32 = 16; // at least 1 MiB = 256 table pages per refill
// Each memory.grow hands the engine a new ArrayBuffer of the whole memory, which V8 counts
// as fresh external memory: past a few hundred MiB nearly every grow set off a full GC.
// Refills therefore grow with the memory (1/8 of it), so a 2 GiB table takes tens of grows,
// not thousands, for at most 1/8 more memory reserved than used.
const REFILL_SHIFT: i32 = 3;

let freeHead: usize = 0;
let freeCount: u32 = 0;
let inUse: u32 = 0;
let pageLimit: u32 = 0xffff_ffff;

// Freshly grown memory not yet handed out: [bumpNext, bumpEnd). memory.grow zeroes it, so
// these pages need no memory.fill (the clear of a 2 GiB table is one pass instead of two).
// The free list is used first, then this range in ascending order: the order the pages
// came out in when each refill was pushed onto the (then empty) free list.
let bumpNext: usize = 0;
let bumpEnd: usize = 0;

function carve(firstWasmPage: i32, wasmPages: i32): void {
  bumpNext = <usize>firstWasmPage << 16;
  bumpEnd = bumpNext + (<usize>wasmPages << 16);
  freeCount += <u32>(wasmPages << 4);
}

/** A zeroed, 4 KiB-aligned table page, or 0 when memory (or the test limit) is exhausted. */
export function tablePageAlloc(): usize {
  if (inUse >= pageLimit || allocFault(FAULT_TABLE_PAGE)) return 0;
  if (freeHead != 0) {
    const p = freeHead;
    freeHead = load<usize>(p);
    freeCount--;
    inUse++;
    memory.fill(p, 0, PAGE);
    return p;
  }
  if (bumpNext == bumpEnd) {
    let n = max(REFILL_WASM_PAGES, memory.size() >> REFILL_SHIFT);
    let first = memory.grow(n);
    if (first < 0 && n > REFILL_WASM_PAGES) {
      n = REFILL_WASM_PAGES;
      first = memory.grow(n);
    }
    if (first >= 0) carve(first, n);
    else {
      first = memory.grow(1);
      if (first < 0) return 0;
      carve(first, 1);
    }
  }
  const q = bumpNext;
  bumpNext += PAGE;
  // The first touch of fresh memory should be a write: a read maps the shared zero page
  // and the write after it faults again (copy-on-write), two page faults per table page
  // instead of one (the callers read the fresh entries before they write them).
  store<u64>(q, 0);
  freeCount--;
  inUse++;
  return q;
}

/** Returns a page to the free list immediately (only when no device can reference it). */
export function tablePageFree(p: usize): void {
  store<usize>(p, freeHead);
  freeHead = p;
  freeCount++;
  inUse--;
}

/** Table pages currently allocated (live tables plus tables waiting on a gather). */
export function ptPagesInUse(): u32 {
  return inUse;
}

/** Table pages on the free list. */
export function ptPagesFree(): u32 {
  return freeCount;
}

/** Caps the table pages in use (tests use it to provoke ENOMEM); 0xffffffff = no cap. */
export function ptSetPageLimit(limit: u32): void {
  pageLimit = limit;
}
