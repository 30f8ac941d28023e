/**
 * User memory of one mm: the VMA list plus sparse backing frames in the Wasm core's
 * linear memory. A 64 KiB frame is allocated on the first write into it; bytes of frames
 * never written read as zero, so guests of 64 GiB to 1 TiB cost nothing until touched.
 *
 * Access checks follow the page protections: copy_from_user fails on any unreadable byte,
 * copy_to_user writes up to the first unwritable byte and reports the rest as not copied.
 */
import { WasmCore } from "../wasm/core";
import { Errno } from "../uapi/errno";
import { IntervalSet } from "./intervals";
import { u64ToNumber } from "../util/u64";
import { HPAGE_PMD_NR, PageBacking } from "./pages";
import { GUP_LINUX_6_1, type GupBehaviour } from "./gup";
import * as vmaConsts from "./vma";
import type { MappedFile } from "./file";
import type { Vma } from "./vma";
// Copied once: under a loader that wraps modules (tsx, esbuild) every read of an imported
// binding is a getter call, and these are read on every MAP_DMA / UNMAP_DMA.
const {
  PAGE_SIZE,
  TASK_SIZE,
  VmaList,
  protReadable,
  protWritable,
} = vmaConsts;

/** The GUP cache serves pins of fewer pages than this (no whole 2 MiB block). */
const GUP_CACHE_PAGES = HPAGE_PMD_NR;

/** Bytes per backing frame. */
export const FRAME_SIZE = 0x10000;
const FRAME_SHIFT = 16;

/** A piece of a user range in linear memory: `ptr` is 0 for a never-written (zero) frame when not allocating. */
export interface UserSpan {
  /** Linear-memory address of the first byte, or 0 when the frame does not exist. */
  ptr: number;
  /** Bytes in this piece. */
  len: number;
  /** Offset of this piece from the start of the requested range. */
  offset: number;
}

/** A physically contiguous, accessible run of pages starting at a user address. */
export interface PinnedRun {
  /** Pages in the run (>= 1). */
  npages: number;
  /** Synthetic physical address of the first page (ZERO_PAGE_PHYS for zero-page runs). */
  phys: number;
  /**
   * The run is the shared zero page (a read-only pin of never-written anonymous memory):
   * a reserved pfn, never charged to locked_vm. Linux sees one run per page there; the
   * model keeps one run, which charges and maps the same.
   */
  reserved: boolean;
}

/** Synthetic physical address of the shared zero page. */
export const ZERO_PAGE_PHYS = 0x1000;

const pageUp = (n: number): number => Math.ceil(n / PAGE_SIZE) * PAGE_SIZE;

const TASK_SIZE_N = BigInt(TASK_SIZE);
const toNum = (a: bigint): number => (a >= 0n && a < TASK_SIZE_N ? u64ToNumber(a) : -1);

/** The memory of one simulated address space. */
export class UserMemory {
  /** The address space layout. */
  readonly vmas = new VmaList();
  private readonly frames = new Map<number, number>();
  /** Pages of private file mappings that hold their own copy (written since mapped: COW broken). */
  private readonly cowed = new IntervalSet();
  /** Whether any file was ever mapped (else every byte lives in this mm's own frames). */
  private fileMapped = false;
  /** Which pages are real, small-zero or huge-zero (decides what pinning charges). */
  readonly backing = new PageBacking((start, end) => {
    const v = this.vmas.find(start);
    return v !== undefined && v.end >= end;
  });

  /**
   * @param gup what get_user_pages() does on this kernel (default: Linux 6.1's).
   */
  constructor(
    readonly core: WasmCore,
    readonly gup: Readonly<GupBehaviour> = GUP_LINUX_6_1,
  ) {
    this.vmas.onSplit = (addr) => this.backing.split(addr);
  }

  /**
   * A one-page access cache (a software TLB entry): the last page found settled — writable,
   * written, with its page table and its frame, no file mapped — where a read or a write
   * changes no state, so an access inside it goes straight to the frame. Every ioctl writes
   * its argument struct into one page and copies it in from there (a VMM's MAP_DMA and
   * UNMAP_DMA by the thousand), and the full checks (VMA lookup, fault, frame lookup) cost
   * more than copying 32 bytes. Valid while none of what settled() depends on has changed:
   * the VMA list's version (munmap, mprotect, file mappings) and the page backing's (pages
   * no longer real; discard(), the only place frames are freed, starts there).
   */
  private tlbPage = -1;
  private tlbPtr = 0;
  private tlbVmas = -1;
  private tlbBacking = -1;

  /** The last copyFromUserInto() destination and a DataView of it (ioctls reuse one struct buffer). */
  private intoDst: Uint8Array | null = null;
  private intoView: DataView | null = null;

  /** Linear address of [addr, addr+len) when it lies in the cached page, else -1 (then take the full path). */
  private tlbLookup(addr: number, len: number): number {
    const page = Math.floor(addr / PAGE_SIZE);
    if (page !== this.tlbPage || this.tlbVmas !== this.vmas.version || this.tlbBacking !== this.backing.version) return -1;
    const off = addr - page * PAGE_SIZE;
    return off + len <= PAGE_SIZE ? this.tlbPtr + off : -1;
  }

  /** After an access by the full path: caches the page of `addr` when it is settled. */
  private tlbFill(addr: number): void {
    if (this.fileMapped) return;
    const page = Math.floor(addr / PAGE_SIZE);
    const start = page * PAGE_SIZE;
    if (this.accessibleLength(start, PAGE_SIZE, true) !== PAGE_SIZE || !this.backing.settled(start, PAGE_SIZE)) return;
    const index = Math.floor(start / FRAME_SIZE);
    const f = this.frames.get(index);
    if (f === undefined) return;
    this.tlbPage = page;
    this.tlbPtr = f + (start - index * FRAME_SIZE);
    this.tlbVmas = this.vmas.version;
    this.tlbBacking = this.backing.version;
  }

  /**
   * A write by the process itself (`Process.write`): false, nothing written, when a byte is
   * not writable (EFAULT); null when linear memory ran out; else true.
   */
  writeUser(addr: number, data: Uint8Array): boolean | null {
    const len = data.length;
    const q = this.tlbLookup(addr, len);
    if (q >= 0) {
      this.core.u8.set(data, q); // a memcpy: half the time of a byte loop into linear memory
      return true;
    }
    if (this.accessibleLength(addr, len, true) < len) return false;
    if (!this.writeRaw(addr, data)) return null;
    if (len > 0 && len <= PAGE_SIZE) this.tlbFill(addr);
    return true;
  }

  /** Number of backing frames currently allocated (for memory-bound tests). */
  get frameCount(): number {
    return this.frames.size;
  }

  /** Bytes from `addr` (up to `len`) before the first byte that is not readable (or writable). */
  accessibleLength(addr: number, len: number, write: boolean): number {
    if (addr < 0 || len <= 0) return 0;
    let pos = addr;
    const end = addr + len;
    let i = this.vmas.findIndex(pos);
    while (pos < end) {
      const v = this.vmas.at(i);
      if (!v || v.start > pos) break;
      if (!(write ? protWritable(v.prot) : protReadable(v.prot))) break;
      // Pages of a file mapping past EOF fault (SIGBUS), so copy_*_user stops there.
      const stop = v.file === undefined ? v.end : Math.min(v.end, v.start + Math.max(0, pageUp(v.file.size) - (v.offset ?? 0)));
      if (stop <= pos) break;
      pos = Math.min(stop, end);
      if (stop < v.end) break;
      i++;
    }
    return pos - addr;
  }

  /** Linear-memory address of the frame holding `addr`, allocating it (zeroed) when `allocate`. 0 = none / ENOMEM. */
  private frame(index: number, allocate: boolean): number {
    let p = this.frames.get(index);
    if (p === undefined) {
      if (!allocate) return 0;
      p = this.core.alloc(FRAME_SIZE, true);
      if (p === 0) return 0;
      this.frames.set(index, p);
    }
    return p;
  }

  /**
   * Visits [addr, addr+len) frame by frame. With `allocate`, missing frames are created
   * (and a span with ptr 0 means linear memory is exhausted); without, ptr 0 means "zeros".
   * No access check: callers check first.
   */
  spans(addr: number, len: number, allocate: boolean): UserSpan[] {
    if (this.fileMapped) return this.mappedSpans(addr, len, allocate);
    const out: UserSpan[] = [];
    let pos = addr;
    const end = addr + len;
    while (pos < end) {
      const index = Math.floor(pos / FRAME_SIZE);
      const inFrame = pos - index * FRAME_SIZE;
      const n = Math.min(FRAME_SIZE - inFrame, end - pos);
      const f = this.frame(index, allocate);
      out.push({ ptr: f === 0 ? 0 : f + inFrame, len: n, offset: pos - addr });
      pos += n;
    }
    return out;
  }

  /**
   * The frames behind [addr, addr+len) when accessing it can change nothing: no file is
   * mapped, every byte is writable (so readable), every page already written, every 2 MiB
   * block has its page table (PageBacking.settled) and every frame exists. Faults of less
   * than a whole block there are then no-ops and writes allocate nothing, so a caller may
   * store into the frames directly. Element i is the linear address of frame
   * floor(addr / FRAME_SIZE) + i. Null when any of that does not hold.
   */
  settledFrames(addr: number, len: number): number[] | null {
    if (this.fileMapped || len <= 0 || this.accessibleLength(addr, len, true) !== len || !this.backing.settled(addr, len)) return null;
    const out: number[] = [];
    for (let i = Math.floor(addr / FRAME_SIZE); i <= Math.floor((addr + len - 1) / FRAME_SIZE); i++) {
      const p = this.frames.get(i);
      if (p === undefined) return null;
      out.push(p);
    }
    return out;
  }

  /** Reads [addr, addr+len) without access checks (zeros where never written). */
  readRaw(addr: number, len: number): Uint8Array {
    const out = new Uint8Array(len);
    const index = Math.floor(addr / FRAME_SIZE);
    if (!this.fileMapped && len > 0 && Math.floor((addr + len - 1) / FRAME_SIZE) === index) {
      // One frame (an ioctl argument struct): spans() without its arrays.
      const f = this.frame(index, false);
      const p = f + (addr - index * FRAME_SIZE);
      if (f !== 0) out.set(this.core.u8.subarray(p, p + len));
      return out;
    }
    for (const s of this.spans(addr, len, false)) {
      if (s.ptr !== 0) out.set(this.core.u8.subarray(s.ptr, s.ptr + s.len), s.offset);
    }
    return out;
  }

  /** readRaw() into `dst[0, len)` (len <= dst.length), without a new array. */
  private readRawInto(addr: number, len: number, dst: Uint8Array): void {
    const index = Math.floor(addr / FRAME_SIZE);
    if (!this.fileMapped && Math.floor((addr + len - 1) / FRAME_SIZE) === index) {
      const f = this.frame(index, false);
      if (f === 0) {
        dst.fill(0, 0, len);
        return;
      }
      const u8 = this.core.u8;
      const p = f + (addr - index * FRAME_SIZE);
      for (let k = 0; k < len; k++) dst[k] = u8[p + k];
      return;
    }
    dst.set(this.readRaw(addr, len));
  }

  /** Write faults on [addr, addr+len): those pages now hold real pages. */
  private touch(addr: number, len: number): void {
    this.backing.fault(addr, len, true);
  }

  /** Writes `data` at `addr` without access checks; returns false when linear memory ran out. */
  writeRaw(addr: number, data: Uint8Array): boolean {
    this.touch(addr, data.length);
    const index = Math.floor(addr / FRAME_SIZE);
    if (!this.fileMapped && data.length > 0 && Math.floor((addr + data.length - 1) / FRAME_SIZE) === index) {
      const f = this.frame(index, true);
      if (f === 0) return false;
      this.core.u8.set(data, f + (addr - index * FRAME_SIZE));
      return true;
    }
    const spans = this.spans(addr, data.length, true);
    if (spans.some((s) => s.ptr === 0)) return false;
    const u8 = this.core.u8;
    for (const s of spans) u8.set(data.subarray(s.offset, s.offset + s.len), s.ptr);
    return true;
  }

  /** memset without access checks; zero fills of absent frames allocate nothing. */
  fillRaw(addr: number, len: number, byte: number): boolean {
    this.touch(addr, len);
    // Zeroing a private file page must copy it first, so file mappings always allocate.
    const spans = this.spans(addr, len, byte !== 0 || this.fileMapped);
    for (const s of spans) {
      if (s.ptr === 0) {
        if (byte !== 0) return false;
        continue;
      }
      this.core.x.fillBytes(s.ptr, byte, s.len);
    }
    return true;
  }

  /** copy_from_user: the bytes, or null when any of them is not readable. */
  copyFromUser(addr: bigint, len: number): Uint8Array | null {
    return this.readUser(toNum(addr), len);
  }

  /** copyFromUser() at an address already a Number (-1: outside user space). */
  readUser(a: number, len: number): Uint8Array | null {
    if (a < 0 || a >= TASK_SIZE || !Number.isSafeInteger(len) || len < 0) return null;
    if (len === 0) return new Uint8Array(0);
    const q = this.tlbLookup(a, len);
    if (q >= 0) return this.core.u8.slice(q, q + len);
    if (this.accessibleLength(a, len, false) < len) return null;
    this.backing.fault(a, len, false);
    const out = this.readRaw(a, len);
    if (len <= PAGE_SIZE) this.tlbFill(a);
    return out;
  }

  /** copy_from_user into `dst[0, len)`: false, nothing copied, when any byte is not readable. */
  copyFromUserInto(addr: bigint, dst: Uint8Array, len: number): boolean {
    const a = toNum(addr);
    if (a < 0 || !Number.isSafeInteger(len) || len < 0 || len > dst.length) return false;
    if (len === 0) return true;
    const q = this.tlbLookup(a, len);
    if (q >= 0) {
      if (((q | len) & 3) === 0) {
        // Word by word (an ioctl struct): a third of the byte loop's time.
        if (dst !== this.intoDst) {
          this.intoDst = dst;
          this.intoView = new DataView(dst.buffer, dst.byteOffset, dst.byteLength);
        }
        const to = this.intoView!;
        const from = this.core.dv;
        for (let k = 0; k < len; k += 4) to.setUint32(k, from.getUint32(q + k, true), true);
        return true;
      }
      const u8 = this.core.u8;
      for (let k = 0; k < len; k++) dst[k] = u8[q + k];
      return true;
    }
    if (this.accessibleLength(a, len, false) < len) return false;
    this.backing.fault(a, len, false);
    this.readRawInto(a, len, dst);
    if (len <= PAGE_SIZE) this.tlbFill(a);
    return true;
  }

  /** copy_to_user: writes up to the first unwritable byte; returns the bytes not written. */
  copyToUser(addr: bigint, data: Uint8Array): number {
    const a = toNum(addr);
    if (a < 0) return data.length;
    const q = this.tlbLookup(a, data.length);
    if (q >= 0) {
      this.core.u8.set(data, q);
      return 0;
    }
    const n = this.accessibleLength(a, data.length, true);
    if (n > 0 && !this.writeRaw(a, n === data.length ? data : data.subarray(0, n))) return data.length;
    return data.length - n;
  }

  /**
   * fault_in_writeable(): faults [addr, addr+len) in for write (allocating the frames a
   * write would) without changing a byte; returns the bytes not faulted in (all of them
   * when a frame cannot be allocated, in which case no page becomes written).
   */
  faultInWriteable(addr: bigint, len: number): number {
    const a = toNum(addr);
    if (a < 0 || !Number.isSafeInteger(len) || len < 0) return len;
    const n = this.accessibleLength(a, len, true);
    if (this.spans(a, n, true).some((s) => s.ptr === 0)) return len;
    this.touch(a, n);
    return len - n;
  }

  /**
   * copy_to_user from linear memory of the same Wasm core (no JS copy): writes up to the
   * first unwritable byte of [addr, addr+len) from `src` and returns the bytes not written.
   */
  copyToUserFromLinear(addr: bigint, src: number, len: number): number {
    const a = toNum(addr);
    if (a < 0) return len;
    const n = this.accessibleLength(a, len, true);
    this.touch(a, n);
    const spans = this.spans(a, n, true);
    if (spans.some((s) => s.ptr === 0)) return len;
    for (const s of spans) this.core.x.copyBytes(s.ptr, src + s.offset, s.len);
    return len - n;
  }

  /**
   * Resolves the pages pin_user_pages() would pin from `vaddr`: up to `maxPages` pages that
   * are accessible (writable when `write`) and physically contiguous. Returns the run, or
   * -EFAULT when the first page cannot be pinned. `longterm` is FOLL_LONGTERM (what VFIO
   * passes); with `gup.longtermUnshareZeroPage` a read-only long-term pin unshares zero pages.
   */
  pinRun(vaddr: number, maxPages: number, write: boolean, longterm = false): PinnedRun | number {
    const n = this.pinUserPages(vaddr, maxPages, write, longterm);
    return n < 0 ? n : { npages: n, phys: this.pinnedPhys, reserved: this.pinnedReserved };
  }

  /**
   * pinRun() without its result object (MAP_DMA pins through it): returns the run's pages or
   * -EFAULT, and leaves its first page's physical address and whether it is the reserved
   * zero page in `pinnedPhys` and `pinnedReserved`.
   */
  pinUserPages(vaddr: number, maxPages: number, write: boolean, longterm = false): number {
    // The GUP cache (below): a run inside the last settled stretch pins as the full path would.
    if (
      vaddr >= this.gupLo &&
      vaddr + maxPages * PAGE_SIZE <= this.gupHi &&
      maxPages < GUP_CACHE_PAGES &&
      this.gupVmas === this.vmas.version &&
      this.gupBacking === this.backing.version
    ) {
      const c = this.gupVma!;
      if (write ? protWritable(c.prot) : protReadable(c.prot)) {
        this.pinnedPhys = c.phys + (vaddr - c.start);
        this.pinnedReserved = false;
        this.gupHits++;
        return maxPages | 0; // below GUP_CACHE_PAGES: a small integer, as the full path returns
      }
    }
    const v = this.vmas.find(vaddr);
    if (!v || !(write ? protWritable(v.prot) : protReadable(v.prot))) return -Errno.EFAULT;
    // FOLL_WRITE in a private file mapping breaks COW: the pin holds the private copy.
    if (write && v.file !== undefined && !v.shared) this.breakCow(vaddr, Math.min(v.end, vaddr + maxPages * PAGE_SIZE));
    const phys = v.phys + (vaddr - v.start);
    let end = v.end;
    let cur = v;
    // Neighbouring VMAs split from the same mapping continue the physical range.
    while ((end - vaddr) / PAGE_SIZE < maxPages) {
      const next = this.vmas.find(end);
      if (!next || next.phys !== cur.phys + (cur.end - cur.start)) break;
      if (!(write ? protWritable(next.prot) : protReadable(next.prot))) break;
      end = next.end;
      cur = next;
    }
    const npages = Math.min(maxPages, (end - vaddr) / PAGE_SIZE);
    const page = Math.floor(vaddr / PAGE_SIZE);
    // GUP faults every page in first (FOLL_WRITE breaks COW from the zero pages; 6.2+ unshares
    // them for a long-term read-only pin, every model mapping being private, so COW).
    if (!write && longterm && this.gup.longtermUnshareZeroPage) this.backing.unshare(vaddr, npages * PAGE_SIZE);
    else this.backing.fault(vaddr, npages * PAGE_SIZE, write);
    // `| 0` (exact: a count this small is an int32) makes it a small integer rather than the
    // double that page arithmetic on 47-bit addresses yields, so the counters it is added to
    // (mm and dma locked_vm, a dma's run length) keep plain integer fields, not boxed ones.
    const run = this.backing.backingRun(page, npages);
    const n = run <= 0x3fffffff ? run | 0 : run;
    const reserved = this.backing.runReserved;
    this.pinnedPhys = reserved ? ZERO_PAGE_PHYS : phys;
    this.pinnedReserved = reserved;
    if (!reserved && this.gupCache && !this.fileMapped) this.gupFill(v, vaddr);
    return n;
  }

  /**
   * The GUP cache: the last stretch [gupLo, gupHi) of one anonymous VMA found settled (every
   * page real, every block with a page table) around a pin's first page. There a pin of
   * fewer than HPAGE_PMD_NR pages (which covers no whole block, the one fault that changes
   * settled pages: it forgets their PMDs) faults nothing in, finds the VMA and its
   * protections unchanged and pins every page it asks for, of real memory: it needs none
   * of the lookups. A VMM maps its guest RAM upwards, region after region, through here.
   * Valid while the VMA list's and the page backing's versions are those it was filled at,
   * as the one-page TLB above; never filled while a file is mapped (COW breaks).
   */
  private gupVma: Vma | null = null;
  private gupLo = 0;
  private gupHi = 0;
  private gupVmas = -1;
  private gupBacking = -1;
  /** Whether pins fill the GUP cache (tests turn it off to compare with the full path). @internal */
  gupCache = true;
  /** Pins the GUP cache served (tests: that it was exercised). @internal */
  gupHits = 0;

  private gupFill(v: Vma, vaddr: number): void {
    const page = Math.floor(vaddr / PAGE_SIZE);
    const hi = this.backing.settledEnd(page, Math.ceil(v.end / PAGE_SIZE)) * PAGE_SIZE;
    if (hi <= vaddr) return;
    this.gupVma = v;
    this.gupLo = this.backing.settledStart(page, Math.ceil(v.start / PAGE_SIZE)) * PAGE_SIZE;
    this.gupHi = hi;
    this.gupVmas = this.vmas.version;
    this.gupBacking = this.backing.version;
  }

  /** pinUserPages()'s other answers: the run's first physical address, and whether it is the zero page. */
  pinnedPhys = 0;
  pinnedReserved = false;

  /** Drops the frames of [start, end) (page-aligned) after munmap: a later mapping there reads zeros. */
  discard(start: number, end: number): void {
    this.backing.unmap(start, end);
    this.cowed.remove(Math.floor(start / PAGE_SIZE), Math.ceil(end / PAGE_SIZE));
    this.backing.freePgtables(start, end, (s, e) => {
      const v = this.vmas.at(this.vmas.findIndex(s));
      return v !== undefined && v.start < e;
    });
    if ((end - start) / FRAME_SIZE > this.frames.size) {
      // A big range with few frames: visit the frames, not the range.
      for (const index of [...this.frames.keys()]) {
        const fStart = index * FRAME_SIZE;
        if (fStart + FRAME_SIZE > start && fStart < end) this.discardFrame(index, Math.max(start, fStart), Math.min(end, fStart + FRAME_SIZE));
      }
      return;
    }
    let pos = start;
    while (pos < end) {
      const index = Math.floor(pos / FRAME_SIZE);
      const fStart = index * FRAME_SIZE;
      const fEnd = fStart + FRAME_SIZE;
      this.discardFrame(index, pos, Math.min(end, fEnd));
      pos = Math.min(end, fEnd);
    }
  }

  /** Drops frame `index` when [from, to) covers it, else zeroes that part. */
  private discardFrame(index: number, from: number, to: number): void {
    const p = this.frames.get(index);
    if (p === undefined) return;
    const fStart = index * FRAME_SIZE;
    if (from === fStart && to === fStart + FRAME_SIZE) {
      this.core.free(p);
      this.frames.delete(index);
    } else {
      this.core.x.fillBytes(p + (from - fStart), 0, to - from);
    }
  }

  /**
   * mmap(2) of `file` (see VmaList.mmapFile). Its pages are page-cache pages, never the
   * zero page, so pinning charges every one of them.
   */
  mmapFile(addr: number | undefined, len: number, prot: number, file: MappedFile, offset: number, shared: boolean): number {
    if (file.core !== this.core) return -Errno.EINVAL; // the pages must be in this mm's linear memory
    const r = this.vmas.mmapFile(addr, len, prot, file, offset, shared);
    if (r < 0) return r;
    this.fileMapped = true;
    this.backing.fault(r, pageUp(len), true);
    return r;
  }

  /** Whether page `page` of a private file mapping holds its own copy. */
  isCowed(page: number): boolean {
    return this.cowed.extent(page, page + 1).inSet;
  }

  /**
   * Breaks COW on the private-file pages of [from, to): each page not yet copied gets the
   * file's current bytes in this mm's own frames, which every later access uses.
   */
  private breakCow(from: number, to: number): boolean {
    let page = Math.floor(from / PAGE_SIZE);
    const endPage = Math.ceil(to / PAGE_SIZE);
    while (page < endPage) {
      const addr = page * PAGE_SIZE;
      const v = this.vmas.find(addr);
      if (v === undefined) {
        page++;
        continue;
      }
      const vEndPage = Math.min(endPage, v.end / PAGE_SIZE);
      if (v.file === undefined || v.shared) {
        page = vEndPage;
        continue;
      }
      const ext = this.cowed.extent(page, vEndPage);
      if (!ext.inSet) {
        const bytes = v.file.readAt((v.offset ?? 0) + (addr - v.start), (ext.end - page) * PAGE_SIZE);
        for (const s of this.anonSpans(addr, bytes.length, true)) {
          if (s.ptr === 0) return false;
          this.core.u8.set(bytes.subarray(s.offset, s.offset + s.len), s.ptr);
        }
        this.cowed.add(page, ext.end);
      }
      page = ext.end;
    }
    return true;
  }

  /** spans() over this mm's own frames only (anonymous memory and COW copies). */
  private anonSpans(addr: number, len: number, allocate: boolean): UserSpan[] {
    const out: UserSpan[] = [];
    for (let pos = addr; pos < addr + len; ) {
      const index = Math.floor(pos / FRAME_SIZE);
      const inFrame = pos - index * FRAME_SIZE;
      const n = Math.min(FRAME_SIZE - inFrame, addr + len - pos);
      const f = this.frame(index, allocate);
      out.push({ ptr: f === 0 ? 0 : f + inFrame, len: n, offset: pos - addr });
      pos += n;
    }
    return out;
  }

  /**
   * spans() once files are mapped: bytes of a shared file mapping (and of a private one not
   * yet written) live in the file's frames at the mapped offset; with `allocate` (a write),
   * private file pages are copied first (COW).
   */
  private mappedSpans(addr: number, len: number, allocate: boolean): UserSpan[] {
    const end = addr + len;
    if (allocate && !this.breakCow(addr, end)) return [{ ptr: 0, len, offset: 0 }];
    const out: UserSpan[] = [];
    let pos = addr;
    while (pos < end) {
      const i = this.vmas.findIndex(pos);
      const v = this.vmas.at(i);
      let file: MappedFile | null = null;
      let limit: number;
      if (v === undefined || v.start > pos) {
        limit = Math.min(end, v === undefined ? end : v.start);
      } else {
        limit = Math.min(end, v.end);
        if (v.file !== undefined) {
          const page = Math.floor(pos / PAGE_SIZE);
          const ext = v.shared ? { inSet: false, end: Math.ceil(limit / PAGE_SIZE) } : this.cowed.extent(page, Math.ceil(limit / PAGE_SIZE));
          limit = Math.min(limit, ext.end * PAGE_SIZE);
          if (!ext.inSet) file = v.file;
        }
      }
      if (file === null) {
        for (const s of this.anonSpans(pos, limit - pos, allocate)) out.push({ ...s, offset: s.offset + pos - addr });
      } else {
        const fileOff = (v!.offset ?? 0) + (pos - v!.start);
        for (let p = pos; p < limit; ) {
          const off = fileOff + (p - pos);
          const index = Math.floor(off / FRAME_SIZE);
          const inFrame = off - index * FRAME_SIZE;
          const n = Math.min(FRAME_SIZE - inFrame, limit - p);
          const f = file.frame(index, allocate);
          out.push({ ptr: f === 0 ? 0 : f + inFrame, len: n, offset: p - addr });
          p += n;
        }
      }
      pos = limit;
    }
    return out;
  }

  /** Frees every frame (the mm is gone). */
  dispose(): void {
    this.tlbPage = -1;
    for (const p of this.frames.values()) this.core.free(p);
    this.frames.clear();
  }
}

export { FRAME_SHIFT };
