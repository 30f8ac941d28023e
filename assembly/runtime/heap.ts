// Linear-memory allocation for the shell: a thin export of the runtime's TLSF heap.
//
// The minimal runtime gives a real allocator (TLSF, 16-byte aligned blocks, frees and
// coalesces) without a garbage collector running behind the kernels' backs. Memory
// grows on demand; the shell must re-read `memory.buffer` after any call here.

/** Allocates `size` bytes (16-byte aligned, contents undefined); traps when memory is exhausted. */
export function alloc(size: usize): usize {
  const before = memory.size();
  const p = heap.alloc(size);
  const after = memory.size();
  if (after != before) reserve(after - before, after);
  return p;
}

// Both builds are limited to 4 GiB (asconfig maximumMemory, SHARED_MAX_PAGES).
const MAX_PAGES: i32 = 65536;
const RESERVE_MAX: usize = 256 << 20;

/**
 * TLSF doubles memory when it grows, until doubling is refused (past half the 4 GiB
 * limit); from then on each allocation that does not fit grows memory by just what it
 * needs, and every grow hands V8 a new ArrayBuffer of the whole memory, counted as
 * external memory: with GiBs of page tables nearly every such grow set off a full GC
 * (a 1 TiB guest's frames cost seconds of GC). After a small grow, grow once more by an
 * eighth of memory (at most 256 MiB) through TLSF, and give that block back to its free
 * list: the next allocations fit without growing. Skipped when it would pass the limit,
 * so it never traps.
 */
function reserve(grown: i32, pages: i32): void {
  if (grown >= (pages >> 3)) return;
  const want = min(<usize>pages << 13, RESERVE_MAX);
  if (pages + <i32>((want + 0x2ffff) >> 16) > MAX_PAGES) return;
  heap.free(heap.alloc(want));
}

/** Allocates `size` zeroed bytes. */
export function allocZeroed(size: usize): usize {
  const p = alloc(size);
  memory.fill(p, 0, size);
  return p;
}

/** Returns a block from `alloc`/`allocZeroed` to the heap. */
export function free(ptr: usize): void {
  heap.free(ptr);
}

/** memmove inside linear memory (the benchmarks' copy baseline, and user-memory copies). */
export function copyBytes(dst: usize, src: usize, n: usize): void {
  memory.copy(dst, src, n);
}

/** memset inside linear memory. */
export function fillBytes(dst: usize, value: u8, n: usize): void {
  memory.fill(dst, value, n);
}
