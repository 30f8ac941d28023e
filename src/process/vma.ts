/**
 * The address space's VMAs: sorted, disjoint [start, end) ranges with a protection and a
 * synthetic physical base. mmap/munmap/mprotect follow mm/mmap.c and mm/mprotect.c for the
 * cases the model needs (anonymous private memory, page granularity, errno order).
 *
 * Physical addresses are synthetic: every mmap gets a fresh contiguous physical range that
 * is never reused, so pinning works per run (a VMA piece) instead of per page.
 */
import { Errno } from "../uapi/errno";
import { fget, fput } from "./fref";
import type { MappedFile } from "./file";

/** Page size of the simulated machine (x86-64, arm64 4K). */
export const PAGE_SIZE = 4096;
export const PAGE_SHIFT = 12;

/** PROT_NONE (mman-common.h): no access. */
export const PROT_NONE = 0;
/** PROT_READ (mman-common.h): the pages may be read. */
export const PROT_READ = 1;
/** PROT_WRITE (mman-common.h): the pages may be written. */
export const PROT_WRITE = 2;
export const PROT_EXEC = 4;

/** The first address user space cannot use (x86-64 TASK_SIZE_MAX, 4-level paging). */
export const TASK_SIZE = 0x7fff_ffff_f000;

/** Alignment of each mapping's synthetic physical base (a PUD: 1 GiB). */
const PHYS_ALIGN = 2 ** 30;

/** One mapping: [start, end) with `prot`; `phys` is the synthetic physical address of `start`. */
export interface Vma {
  start: number;
  end: number;
  prot: number;
  phys: number;
  /** The mapped file (vm_file); absent for anonymous memory. */
  file?: MappedFile;
  /** File offset of `start` in bytes (vm_pgoff << PAGE_SHIFT); with `file`. */
  offset?: number;
  /** MAP_SHARED (VM_SHARED): writes reach the file; otherwise a private (COW) mapping of it. */
  shared?: boolean;
}

/** Whether two VMAs map the same object the same way (vma_merge's file and flags checks). */
function sameBacking(a: Vma, b: Vma): boolean {
  return a.file === b.file && a.shared === b.shared;
}

/** Whether `prot` lets the process read (x86: write implies read). */
export function protReadable(prot: number): boolean {
  return (prot & (PROT_READ | PROT_WRITE)) !== 0;
}

/** Whether `prot` lets the process write. */
export function protWritable(prot: number): boolean {
  return (prot & PROT_WRITE) !== 0;
}

const pageUp = (n: number): number => Math.ceil(n / PAGE_SIZE) * PAGE_SIZE;

/** The sorted VMA list of one mm. */
export class VmaList {
  private readonly vmas: Vma[] = [];
  /** Called when a VMA is split at an address (THP split of the block around it). */
  onSplit: (addr: number) => void = () => {};
  /** Next synthetic physical address handed to a new mapping (starts high so 0 is never a valid phys). */
  private nextPhys = 0x1_0000_0000;
  /**
   * Bumped by every change to the list (a new, split, merged, removed or re-protected VMA):
   * UserMemory's one-page access cache is valid only while this is unchanged.
   */
  version = 0;

  /** A snapshot of the VMAs (copies), ascending. */
  list(): Vma[] {
    return this.vmas.map((v) => ({ ...v }));
  }

  /** Index of the first VMA with end > addr (find_vma), or length. */
  findIndex(addr: number): number {
    let lo = 0;
    let hi = this.vmas.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.vmas[mid].end > addr) hi = mid;
      else lo = mid + 1;
    }
    return lo;
  }

  /** The VMA at index `i` of the sorted list (live object: do not modify). */
  at(i: number): Readonly<Vma> | undefined {
    return this.vmas[i];
  }

  /** The VMA containing `addr`, if any. */
  find(addr: number): Vma | undefined {
    const v = this.vmas[this.findIndex(addr)];
    return v && v.start <= addr ? v : undefined;
  }

  /** Whether [start, end) intersects any VMA. */
  private overlaps(start: number, end: number): boolean {
    const v = this.vmas[this.findIndex(start)];
    return v !== undefined && v.start < end;
  }

  /**
   * mmap(2) of anonymous private memory. With `addr` it behaves like MAP_FIXED_NOREPLACE
   * (EEXIST on overlap); without, it picks a free range below the top of user space.
   * Returns the address or -errno.
   */
  mmap(addr: number | undefined, len: number, prot: number): number {
    if (!Number.isSafeInteger(len) || len <= 0) return -Errno.EINVAL;
    if ((prot & ~(PROT_READ | PROT_WRITE | PROT_EXEC)) !== 0) return -Errno.EINVAL;
    const size = pageUp(len);
    if (size > TASK_SIZE) return -Errno.ENOMEM;
    let start: number;
    if (addr !== undefined) {
      if (!Number.isSafeInteger(addr) || addr % PAGE_SIZE !== 0) return -Errno.EINVAL;
      if (addr + size > TASK_SIZE) return -Errno.ENOMEM;
      if (this.overlaps(addr, addr + size)) return -Errno.EEXIST;
      start = addr;
    } else {
      // Top-down like the default x86-64 layout: the highest gap that fits below the mmap base.
      let top = 0x7f00_0000_0000;
      let i = this.findIndex(top) - 1;
      for (;;) {
        const below = i >= 0 ? this.vmas[i].end : 0;
        if (top - size >= below) {
          start = top - size;
          break;
        }
        if (i < 0) return -Errno.ENOMEM;
        top = Math.min(top, this.vmas[i].start);
        i--;
      }
    }
    const vma: Vma = { start, end: start + size, prot, phys: this.nextPhys };
    // A hole keeps different mappings physically discontiguous, and each base is 1 GiB
    // aligned, as huge pages are in real memory: otherwise every mapping after the first
    // would be misaligned and an IOMMU could only map it with 4 KiB leaves.
    this.nextPhys = Math.ceil((this.nextPhys + size + PAGE_SIZE) / PHYS_ALIGN) * PHYS_ALIGN;
    this.vmas.splice(this.findIndex(start), 0, vma);
    this.version++;
    return start;
  }

  /**
   * mmap(2) of a file: the same address choice and errors as `mmap`, plus EINVAL for an
   * offset that is not page-aligned. The VMA maps `file` from byte `offset`, MAP_SHARED or
   * MAP_PRIVATE, and holds a reference on it. Its physical addresses are the file's pages,
   * so every shared mapping of the same offset, in any process, has the same ones.
   */
  mmapFile(addr: number | undefined, len: number, prot: number, file: MappedFile, offset: number, shared: boolean): number {
    if (!Number.isSafeInteger(offset) || offset < 0 || offset % PAGE_SIZE !== 0) return -Errno.EINVAL;
    const r = this.mmap(addr, len, prot);
    if (r < 0) return r;
    const v = this.vmas[this.findIndex(r)];
    Object.assign(v, { file, offset, shared, phys: file.phys + offset });
    this.version++;
    fget(file);
    return r;
  }

  /** Splits the VMA containing `addr` so that a VMA boundary falls at `addr`. */
  private splitAt(addr: number): void {
    const i = this.findIndex(addr);
    const v = this.vmas[i];
    if (!v || v.start >= addr) return;
    this.version++;
    this.onSplit(addr);
    const tail: Vma = { start: addr, end: v.end, prot: v.prot, phys: v.phys + (addr - v.start) };
    if (v.file !== undefined) {
      // __split_vma: the new VMA takes its own reference on the file.
      Object.assign(tail, { file: v.file, offset: (v.offset ?? 0) + (addr - v.start), shared: v.shared });
      fget(v.file);
    }
    v.end = addr;
    this.vmas.splice(i + 1, 0, tail);
  }

  /** Removes [start, end) (page-aligned) from the list; returns the removed pieces. */
  removeRange(start: number, end: number): Vma[] {
    this.splitAt(start);
    this.splitAt(end);
    const i = this.findIndex(start);
    let j = i;
    while (j < this.vmas.length && this.vmas[j].start < end) j++;
    this.version++;
    return this.vmas.splice(i, j - i);
  }

  /** munmap(2) checks; the caller removes the range (and its memory) on 0. */
  checkMunmap(addr: number, len: number): number {
    if (!Number.isSafeInteger(addr) || addr % PAGE_SIZE !== 0 || addr > TASK_SIZE) return -Errno.EINVAL;
    if (!Number.isSafeInteger(len) || len === 0) return -Errno.EINVAL;
    const size = pageUp(len);
    if (size > TASK_SIZE || addr > TASK_SIZE - size) return -Errno.EINVAL;
    return 0;
  }

  /**
   * mprotect(2): EINVAL for a misaligned start or unknown bits, 0 for an empty range,
   * ENOMEM when the range is not fully mapped — after changing the VMAs before the hole,
   * like do_mprotect_pkey().
   */
  mprotect(addr: number, len: number, prot: number): number {
    if (!Number.isSafeInteger(addr) || addr % PAGE_SIZE !== 0) return -Errno.EINVAL;
    if ((prot & ~(PROT_READ | PROT_WRITE | PROT_EXEC)) !== 0) return -Errno.EINVAL;
    if (!Number.isSafeInteger(len) || len < 0) return -Errno.ENOMEM;
    const size = pageUp(len);
    if (size === 0) return 0;
    const end = addr + size;
    if (end > 2 ** 64 || end <= addr) return -Errno.ENOMEM;
    let i = this.findIndex(addr);
    if (i >= this.vmas.length || this.vmas[i].start > addr) return -Errno.ENOMEM;
    let pos = addr;
    while (pos < end) {
      i = this.findIndex(pos); // merging may have renumbered the list
      const v = this.vmas[i];
      if (!v || v.start > pos) return -Errno.ENOMEM;
      const pieceEnd = Math.min(v.end, end);
      if (v.prot !== prot) {
        this.splitAt(pos);
        this.splitAt(pieceEnd);
        i = this.findIndex(pos);
        this.vmas[i].prot = prot;
        this.version++;
        this.mergeAround(i);
      }
      pos = pieceEnd;
    }
    return 0;
  }

  /** vma_merge(): joins VMA i with neighbours of the same mapping (contiguous phys) and prot; returns i's new index. */
  private mergeAround(i: number): number {
    this.version++;
    const v = this.vmas[i];
    const next = this.vmas[i + 1];
    if (next && next.start === v.end && next.prot === v.prot && next.phys === v.phys + (v.end - v.start) && sameBacking(v, next)) {
      v.end = next.end;
      this.vmas.splice(i + 1, 1);
      if (next.file !== undefined) fput(next.file);
    }
    const prev = this.vmas[i - 1];
    if (prev && prev.end === v.start && prev.prot === v.prot && v.phys === prev.phys + (prev.end - prev.start) && sameBacking(prev, v)) {
      prev.end = v.end;
      this.vmas.splice(i, 1);
      if (v.file !== undefined) fput(v.file);
      return i - 1;
    }
    return i;
  }
}
