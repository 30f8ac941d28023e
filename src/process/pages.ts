/**
 * What backs each page of anonymous memory, as far as pinning can tell: a real page, the
 * 4 KiB shared zero page (a reserved pfn: pinned but never charged to locked_vm), or the
 * huge zero page (not reserved: charged). Follows Linux 6.1 with THP "always" and
 * use_zero_page, which is what the oracle's recordings show:
 * - a read fault in a 2 MiB block that one VMA covers maps the huge zero page;
 * - a write fault there allocates a THP (all 512 pages real);
 * - in a block that already has a page table, or that no single VMA covers, read faults map
 *   the small zero page and write faults allocate one page;
 * - splitting a huge zero mapping (a VMA boundary inside the block) turns it into small
 *   zero pages; a write to a huge zero block splits it the same way, then COWs one page.
 * State is per interval of real pages and per touched 2 MiB block, never per page.
 */
import { IntervalSet } from "./intervals";
import * as vmaConsts from "./vma";
// Copied once: under a loader that wraps modules (tsx, esbuild) every read of an imported
// binding is a getter call, and these are read on every MAP_DMA / UNMAP_DMA.
const { PAGE_SIZE } = vmaConsts;

/** Pages per PMD (2 MiB / 4 KiB). */
export const HPAGE_PMD_NR = 512;
const HPAGE_SIZE = HPAGE_PMD_NR * PAGE_SIZE;

/** State of a 2 MiB block's PMD. Absent = pmd_none. */
const enum Pmd {
  HugeZero = 1,
  Table = 2,
}

/**
 * PMD state per 2 MiB block, kept as intervals of block numbers (neighbouring blocks in the
 * same state merge), so even read-faulting a terabyte of untouched memory stays small.
 */
class PmdStates {
  private readonly hugeZero = new IntervalSet();
  private readonly table = new IntervalSet();

  get(b: number): Pmd | undefined {
    if (this.hugeZero.has(b)) return Pmd.HugeZero;
    if (this.table.has(b)) return Pmd.Table;
    return undefined;
  }

  set(b: number, st: Pmd): void {
    if (this.get(b) === st) return;
    (st === Pmd.HugeZero ? this.table : this.hugeZero).remove(b, b + 1);
    (st === Pmd.HugeZero ? this.hugeZero : this.table).add(b, b + 1);
  }

  /** The end (exclusive, at most `limit`) of the run of Table blocks from `b`; `b` when b is not one. */
  tableEnd(b: number, limit: number): number {
    // hugeZero and table never share a block (set() moves it), so table alone answers.
    const end = this.table.extentEnd(b, limit);
    return this.table.extentInSet ? end : b;
  }

  /** The first block (at least `limit`) of the run of Table blocks holding `b`, which must be one. */
  tableStart(b: number, limit: number): number {
    return this.table.memberStart(b, limit);
  }

  /** Forgets blocks [first, last). */
  deleteRange(first: number, last: number): void {
    this.hugeZero.remove(first, last);
    this.table.remove(first, last);
  }

  /** Number of intervals held. */
  get size(): number {
    return this.hugeZero.size + this.table.size;
  }
}

/** Page backing of one mm. */
export class PageBacking {
  /** Pages holding real (written) pages. */
  private readonly real = new IntervalSet();
  private readonly pmd = new PmdStates();
  /**
   * Bumped whenever a page can stop being settled() (real pages removed, PMD state dropped):
   * UserMemory's one-page access cache is valid only while this is unchanged. Nothing else
   * un-settles a page: faults only add real pages and page tables.
   */
  version = 0;

  constructor(private readonly coversBlock: (start: number, end: number) => boolean) {}

  /** Faults [addr, addr+len) in for read or write, as the process, the kernel or GUP would. */
  fault(addr: number, len: number, write: boolean): void {
    if (len <= 0) return;
    let page = Math.floor(addr / PAGE_SIZE);
    const endPage = Math.ceil((addr + len) / PAGE_SIZE);
    if (write) {
      // Writing every page of whole blocks makes them all real whatever their PMD held
      // (THP, COW of zero pages): one interval, no per-block state, so pinning a 1 TiB
      // guest for write costs O(1) here.
      const firstFull = Math.ceil(page / HPAGE_PMD_NR);
      const lastFull = Math.floor(endPage / HPAGE_PMD_NR);
      if (lastFull > firstFull) {
        this.fault(addr, firstFull * HPAGE_SIZE - addr, true);
        this.real.add(firstFull * HPAGE_PMD_NR, lastFull * HPAGE_PMD_NR);
        this.dropPmds(firstFull, lastFull);
        this.fault(lastFull * HPAGE_SIZE, addr + len - lastFull * HPAGE_SIZE, true);
        return;
      }
    }
    while (page < endPage) {
      const block = Math.floor(page / HPAGE_PMD_NR);
      const bEnd = Math.min(endPage, (block + 1) * HPAGE_PMD_NR);
      this.faultInBlock(block, page, bEnd, write);
      page = bEnd;
    }
  }

  /**
   * An unshare fault over [addr, addr+len) (FAULT_FLAG_UNSHARE, from a long-term read-only
   * pin on 6.2+): every page that holds a zero page, small or huge, gets a fresh anonymous
   * page of its own. A huge zero PMD is split first (do_huge_pmd_wp_page() falls back), so
   * unlike a write fault into an empty block, only the pinned pages become real.
   */
  unshare(addr: number, len: number): void {
    if (len <= 0) return;
    let page = Math.floor(addr / PAGE_SIZE);
    const endPage = Math.ceil((addr + len) / PAGE_SIZE);
    const firstFull = Math.ceil(page / HPAGE_PMD_NR);
    const lastFull = Math.floor(endPage / HPAGE_PMD_NR);
    if (lastFull > firstFull) {
      // Whole blocks end with every page real, whatever they held: as a write fault.
      this.real.add(firstFull * HPAGE_PMD_NR, lastFull * HPAGE_PMD_NR);
      this.dropPmds(firstFull, lastFull);
      this.unshare(addr, firstFull * HPAGE_SIZE - addr);
      this.unshare(lastFull * HPAGE_SIZE, addr + len - lastFull * HPAGE_SIZE);
      return;
    }
    while (page < endPage) {
      const block = Math.floor(page / HPAGE_PMD_NR);
      const bEnd = Math.min(endPage, (block + 1) * HPAGE_PMD_NR);
      // Read fault (maybe a huge zero PMD), split, then one fresh page per pinned page.
      this.pmd.set(block, Pmd.Table);
      this.real.add(page, bEnd);
      page = bEnd;
    }
  }

  private faultInBlock(block: number, from: number, to: number, write: boolean): void {
    let st = this.pmd.get(block);
    if (st === undefined) {
      const start = block * HPAGE_SIZE;
      if (this.coversBlock(start, start + HPAGE_SIZE)) {
        if (write) {
          // do_huge_pmd_anonymous_page(): a whole THP of real pages.
          this.real.add(block * HPAGE_PMD_NR, (block + 1) * HPAGE_PMD_NR);
          this.pmd.set(block, Pmd.Table);
        } else {
          this.pmd.set(block, Pmd.HugeZero);
        }
        return;
      }
      st = Pmd.Table;
      this.pmd.set(block, st);
    }
    if (!write) return;
    if (st === Pmd.HugeZero) this.pmd.set(block, Pmd.Table); // split, then COW one page
    this.real.add(from, to);
  }

  /**
   * Whether every page of [addr, addr+len) is real and every 2 MiB block it touches has a
   * page table: then a read or write fault there of less than a whole block changes nothing.
   */
  settled(addr: number, len: number): boolean {
    if (len <= 0) return false;
    const page = Math.floor(addr / PAGE_SIZE);
    const endPage = Math.ceil((addr + len) / PAGE_SIZE);
    const extEnd = this.real.extentEnd(page, endPage);
    if (!this.real.extentInSet || extEnd !== endPage) return false;
    for (let b = Math.floor(page / HPAGE_PMD_NR); b <= Math.floor((endPage - 1) / HPAGE_PMD_NR); b++) if (this.pmd.get(b) !== Pmd.Table) return false;
    return true;
  }

  /**
   * The end (exclusive, at most `limit`) of the settled() stretch of pages from `page` on:
   * real pages in blocks that have a page table. `page` itself when it is not settled.
   */
  settledEnd(page: number, limit: number): number {
    const realEnd = this.real.extentEnd(page, limit);
    if (!this.real.extentInSet) return page;
    const tableEnd = this.pmd.tableEnd(Math.floor(page / HPAGE_PMD_NR), Math.ceil(limit / HPAGE_PMD_NR));
    return Math.max(page, Math.min(realEnd, tableEnd * HPAGE_PMD_NR));
  }

  /**
   * The start (at least `limit`) of the settled() stretch that holds `page`, which must be
   * settled (settledEnd(page) > page). With settledEnd(), the whole stretch around a page.
   */
  settledStart(page: number, limit: number): number {
    const tableStart = this.pmd.tableStart(Math.floor(page / HPAGE_PMD_NR), Math.floor(limit / HPAGE_PMD_NR));
    return Math.max(this.real.memberStart(page, limit), tableStart * HPAGE_PMD_NR);
  }

  /** A VMA boundary appears at `addr` (split_vma, munmap): a huge zero PMD around it is split. */
  split(addr: number): void {
    if (addr % HPAGE_SIZE === 0) return;
    const block = Math.floor(addr / HPAGE_SIZE);
    if (this.pmd.get(block) === Pmd.HugeZero) this.pmd.set(block, Pmd.Table);
  }

  /** Forgets the PMD state of blocks [first, last). */
  private dropPmds(first: number, last: number): void {
    if (last <= first) return;
    this.version++;
    this.pmd.deleteRange(first, last);
  }

  /** Number of PMD-state intervals held (tests: bounded memory). */
  get pmdCount(): number {
    return this.pmd.size;
  }

  /** munmap of [start, end): pages are gone; blocks wholly inside lose their PMD. */
  unmap(start: number, end: number): void {
    this.split(start);
    this.split(end);
    this.version++;
    this.real.remove(Math.floor(start / PAGE_SIZE), Math.ceil(end / PAGE_SIZE));
    this.dropPmds(Math.ceil(start / HPAGE_SIZE), Math.floor(end / HPAGE_SIZE));
  }

  /**
   * free_pgtables() after munmap of [start, end): the page table of an edge block that the
   * range only partly covers is freed too once no VMA is left in the block (the prev/next
   * floor and ceiling of free_pgd_range()), so a later fault there sees pmd_none again and
   * may map a THP or the huge zero page.
   */
  freePgtables(start: number, end: number, vmaIn: (start: number, end: number) => boolean): void {
    if (end <= start) return;
    for (const b of new Set([Math.floor(start / HPAGE_SIZE), Math.floor((end - 1) / HPAGE_SIZE)])) {
      if (!vmaIn(b * HPAGE_SIZE, (b + 1) * HPAGE_SIZE)) this.dropPmds(b, b + 1);
    }
  }

  /**
   * After faulting: from `page`, how many pages (up to `limit`) share one backing kind; whether
   * that kind is the reserved small zero page is left in `runReserved` (no result object:
   * every MAP_DMA pins through here).
   */
  backingRun(page: number, limit: number): number {
    const extEnd = this.real.extentEnd(page, page + limit);
    if (this.real.extentInSet) {
      this.runReserved = false;
      return extEnd - page;
    }
    // Unwritten pages: huge zero blocks are not reserved, small zero pages are.
    const reserved = this.smallZero(page);
    let end = page;
    while (end < extEnd) {
      const blockEnd = Math.min(extEnd, (Math.floor(end / HPAGE_PMD_NR) + 1) * HPAGE_PMD_NR);
      if (this.smallZero(end) !== reserved) break;
      end = blockEnd;
    }
    this.runReserved = reserved;
    return end - page;
  }

  /** backingRun()'s other answer: whether the run is the reserved small zero page. */
  runReserved = false;

  /** Whether unwritten page `p` reads the small (reserved) zero page rather than a huge one. */
  private smallZero(p: number): boolean {
    return this.pmd.get(Math.floor(p / HPAGE_PMD_NR)) !== Pmd.HugeZero;
  }
}
