// Linear-memory allocation for the shell: a thin export of the runtime's TLSF heap.
//
// The minimal runtime gives a real allocator (TLSF, 16-byte aligned blocks, frees and
// coalesces) without a garbage collector running behind the kernels' backs. Memory
// grows on demand; the shell must re-read `memory.buffer` after any call here.

/** Allocates `size` bytes (16-byte aligned, contents undefined); traps when memory is exhausted. */
export function alloc(size: usize): usize {
  return heap.alloc(size);
}

/** Allocates `size` zeroed bytes. */
export function allocZeroed(size: usize): usize {
  const p = heap.alloc(size);
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
