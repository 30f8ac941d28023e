/**
 * struct vfio_iommu: the type1 backend of one container (drivers/vfio/vfio_iommu_type1.c).
 * Methods are named after the kernel functions they model and follow their order of checks,
 * so each errno comes out where Linux returns it. u64 values are bigint and wrap like C.
 */
import { WasmCore } from "../wasm/core";
import { Errno } from "../uapi/errno";
import * as uapi from "../uapi/vfio";
import type { IommuDomain, IovaRange } from "../iommu/domain";
import {
  Platform,
  PlatformGroup,
  allocDomain,
  groupResvRegions,
  vfioIommuAperConflict,
  vfioIommuAperResize,
  vfioIommuHasSwMsi,
  vfioIommuResvConflict,
  vfioIommuResvExclude,
} from "../iommu/platform";
import { Bitmap } from "../bitmap";
import type { Task } from "../process/task";
import * as mmConsts from "../process/mm";
import { RlimitPages } from "../process/mm";
import { PAGE_SHIFT, PAGE_SIZE } from "../process/vma";
import { Mutex } from "./lock";
import { IovaList } from "../util/sorted-list";
import { bigintToNumber, numberToU64, u64ToNumber } from "../util/u64";
import { VfioDma, type PinnedRun, type VfioPfn } from "./dma";
import { DEFAULT_TYPE1_OPTIONS, Type1Kernel, Type1Options, type1Kernel } from "./options";
import { mmLockAcct, vfioLockAcctWorkqueue } from "./lock-acct";
import { COPY_CHUNK_WORDS, reportAndClearAll, reportAndClearCached, updateUserBitmap, type DirtyBitmapHost, type ReportCache } from "./dirty";
// Copied once: under a loader that wraps modules (tsx, esbuild) every read of an imported
// binding is a getter call, and these are read on every MAP_DMA / UNMAP_DMA.
const {
  IOMMU_CACHE,
  IOMMU_READ,
  IOMMU_WRITE,
  U64_MASK,
  VFIO_DMA_MAP_FLAG_READ,
  VFIO_DMA_MAP_FLAG_VADDR,
  VFIO_DMA_MAP_FLAG_WRITE,
  VFIO_DMA_UNMAP_FLAG_ALL,
  VFIO_DMA_UNMAP_FLAG_GET_DIRTY_BITMAP,
  VFIO_DMA_UNMAP_FLAG_VADDR,
  DIRTY_BITMAP_PAGES_MAX,
} = uapi;
const { CAP_IPC_LOCK } = mmConsts;

const PAGE = BigInt(PAGE_SIZE);
const PSHIFT = BigInt(PAGE_SHIFT);
const u64 = (x: bigint): bigint => x & U64_MASK;
/** Addresses a Number holds exactly (pinRun takes numbers). */
const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);
/** 2^53: below it, `a + size - 1` cannot wrap a u64, so no sum needs computing. */
const NO_WRAP_LIMIT = 1n << 53n;
/** NO_WRAP_LIMIT as a Number: below it a Number holds a u64 exactly. */
const NO_WRAP_LIMIT_N = 2 ** 53;

/** Whether `a + size - 1` wraps past U64_MAX, for size >= 1 (the u64(a + size - 1) < a test). */
const wrapsU64 = (a: bigint, size: bigint): boolean => (a >= NO_WRAP_LIMIT || size >= NO_WRAP_LIMIT) && u64(a + size - 1n) < a;
/** DIRTY_BITMAP_PAGES_MAX as a Number (page counts compare as Numbers). */
const DIRTY_BITMAP_PAGES_MAX_N = Number(DIRTY_BITMAP_PAGES_MAX);
/** VFIO_BATCH_MAX_CAPACITY: a vfio_batch holds one page of struct page pointers. */
const VFIO_BATCH_MAX_CAPACITY = BigInt(PAGE_SIZE / 8);

/** struct vfio_domain. */
export interface VfioDomain {
  domain: IommuDomain;
  groups: VfioIommuGroup[];
  enforceCacheCoherency: boolean;
  /** Base of the SW_MSI window when iommu_get_msi_cookie() was called. */
  msiCookie: bigint | null;
}

/** struct vfio_iommu_group. */
export interface VfioIommuGroup {
  group: PlatformGroup;
  /** Whether the group's DMA is known only through pinned pages (emulated, or promoted by pin_pages). */
  pinnedPageDirtyScope: boolean;
}

/** An emulated device registered for dma_unmap notifications (struct vfio_device with a dma_unmap op). */
export interface VfioEmulatedDevice {
  /** The group the device is in (an attached group of this container). */
  readonly group: PlatformGroup;
  /** Called with iommu->lock dropped: the device must vfio_unpin_pages() everything it pinned in the range. */
  dmaUnmap(iova: bigint, length: bigint): void;
}

/** The arguments of MAP_DMA as the kernel reads them. */
export interface DmaMapArgs {
  flags: number;
  vaddr: bigint;
  iova: bigint;
  size: bigint;
  /**
   * Optional: vaddr, iova and size as Numbers when below 2^53 (exact), else -1. The ioctl
   * decodes them from the struct's 32-bit words, which costs less than converting the
   * BigInts; without them vfio_dma_do_map() converts.
   */
  vaddrN?: number;
  iovaN?: number;
  sizeN?: number;
}

/** The arguments of UNMAP_DMA; `size` is written back with the bytes unmapped. */
export interface DmaUnmapArgs {
  flags: number;
  iova: bigint;
  size: bigint;
}

/** struct vfio_bitmap as copied from user space. */
export interface VfioBitmapArgs {
  pgsize: bigint;
  size: bigint;
  data: bigint;
}

/** Result of vfio_pin_pages(): the count pinned or -errno, and the physical address of each page. */
export interface PinPagesResult {
  ret: number;
  phys: bigint[];
}

/** The type1 container state. */
export class VfioIommu implements DirtyBitmapHost {
  readonly lock = new Mutex("iommu->lock");
  readonly domainList: VfioDomain[] = [];
  iovaList: IovaRange[] = [];
  /** dma_list, sorted by iova, disjoint. */
  readonly dmaList = new IovaList<VfioDma>();
  readonly deviceList: VfioEmulatedDevice[] = [];
  readonly emulatedGroups: VfioIommuGroup[] = [];
  dmaAvail: number;
  vaddrInvalidCount = 0;
  pgsizeBitmap: bigint;
  numNonPinnedGroups = 0;
  /**
   * Pages removed dmas still had charged when freed: vfio_remove_dma() uncharges only what
   * vfio_unmap_unpin() unpins, so a charge no pinned page accounts for stays in
   * mm->locked_vm (an external pin charged for a page the IOMMU mapping replaced, e.g. a
   * huge zero page whose PMD was split before replay). Not kernel state: it lets checks
   * tell Linux's leak from a model one.
   */
  leakedLockedVm = 0;
  readonly v2: boolean;
  readonly nesting: boolean;
  dirtyPageTracking = false;
  /** See DirtyBitmapHost.dirtyGen (src/type1/dirty.ts). */
  dirtyGen = 0;
  reportCache: ReportCache | null = null;
  readonly opts: Type1Options;
  /** The kernel changes the profile selects. */
  readonly kernel: Readonly<Type1Kernel>;

  /** vfio_iommu_type1_open(). Use `VfioIommu.open` to get the errno for a bad type. */
  private constructor(
    readonly core: WasmCore,
    readonly platform: Platform,
    type: number,
    opts: Partial<Type1Options>,
  ) {
    this.opts = { ...DEFAULT_TYPE1_OPTIONS, ...opts };
    this.kernel = type1Kernel(this.opts.profile);
    this.v2 = type !== 1;
    this.nesting = type === 6;
    this.dmaAvail = this.opts.dmaEntryLimit;
    this.pgsizeBitmap = u64(~(PAGE - 1n)); // PAGE_MASK
  }

  /** vfio_iommu_type1_open(arg): TYPE1 (1), TYPE1v2 (3) or the nesting value (6); else -EINVAL. */
  static open(core: WasmCore, platform: Platform, type: number, opts: Partial<Type1Options> = {}): VfioIommu | number {
    if (type !== 1 && type !== 3 && type !== 6) return -Errno.EINVAL;
    return new VfioIommu(core, platform, type, opts);
  }

  /** The error for an address wrap: -EINVAL up to 6.18-rc3, then -EOVERFLOW. */
  private get wrapErrno(): number {
    return this.kernel.overflowChecks ? -Errno.EOVERFLOW : -Errno.EINVAL;
  }

  /** 1 << __ffs(pgsize_bitmap). */
  pgsize(): bigint {
    if (this.pgsizeFor !== this.pgsizeBitmap) {
      this.pgsizeFor = this.pgsizeBitmap;
      this.pgsizeLow = this.pgsizeBitmap & -this.pgsizeBitmap;
      this.pgsizeMask = this.pgsizeLow - 1n;
      this.pgsizeMaskN = this.pgsizeMask >= 0n && this.pgsizeMask < 0x8000_0000n ? Number(this.pgsizeMask) : -1;
    }
    return this.pgsizeLow;
  }

  /** pgsize() - 1, from the same cache. */
  private pgmask(): bigint {
    this.pgsize();
    return this.pgsizeMask;
  }

  /** pgsize() for the bitmap it was computed from (MAP_DMA asks on every call). */
  private pgsizeFor = -1n;
  private pgsizeLow = 0n;
  private pgsizeMask = 0n;
  /** pgsizeMask as a Number when it fits an int32 (so `&` on Numbers applies it), else -1. */
  private pgsizeMaskN = -1;

  private pgshift(): number {
    let s = 0;
    for (let p = this.pgsize(); p > 1n; p >>= 1n) s++;
    return s;
  }

  // ------------------------------------------------------------------ dma tree

  /** Index of the first dma whose end is above `start` (the lowest dma that may overlap [start, ...)); `key`: Number(start). */
  private lowerBound(start: bigint, key?: number): number {
    return this.dmaList.firstEndAbove(start, key);
  }

  /**
   * vfio_find_dma(): a dma overlapping [start, start+size). 6.1 compares with an exclusive
   * end computed in u64 (a sum that wraps to 0 finds nothing); 6.18+ uses inclusive ends.
   * `startKey`: Number(start), when the caller has it.
   */
  vfioFindDma(start: bigint, size: bigint, startKey?: number): VfioDma | null {
    const i = this.lowerBound(start, startKey);
    this.findDmaIndex = i;
    const d = this.dmaList.at(i)!;
    if (!d) return null;
    if (size === 0n) return d.iova < start && start < d.end ? d : null;
    // Below 2^53 neither form can wrap: one sum.
    const end =
      start < NO_WRAP_LIMIT && size < NO_WRAP_LIMIT ? start + size : this.kernel.overflowChecks ? start + (size - 1n) + 1n : u64(start + size);
    return d.iova < end ? d : null;
  }

  /** Where the last vfioFindDma() search stopped (vfioLinkDma's hint). */
  private findDmaIndex = -1;

  /** vfio_find_dma_first_node(): index of the lowest dma overlapping [start, start+size), or -1. */
  private vfioFindDmaFirst(start: bigint, size: bigint): number {
    const i = this.lowerBound(start);
    const d = this.dmaList.at(i)!;
    if (!d) return -1;
    if (size !== 0n && d.iova >= u64(start + size)) return -1;
    return i;
  }

  /**
   * vfio_link_dma(). `hint` is where MAP_DMA's vfio_find_dma() search stopped (the first dma
   * ending above dma.iova): the insertion point whenever nothing overlaps, which is checked
   * with one comparison, since a range whose end wraps can overlap undetected in 6.1.
   * `key`: Number(dma.iova), when the caller has it.
   */
  private vfioLinkDma(dma: VfioDma, hint = -1, key?: number): void {
    this.dirtyGen++;
    const list = this.dmaList;
    const at = hint >= 0 && (hint === list.length || list.at(hint)!.iova >= dma.iova) ? hint : list.firstIovaAtOrAbove(dma.iova, key);
    list.insertAt(at, dma, key);
  }

  /** vfio_unlink_dma(). `hint`: the dma's index when the caller has it (UNMAP_DMA's walk), checked. */
  private vfioUnlinkDma(dma: VfioDma, hint = -1): void {
    this.dirtyGen++;
    const list = this.dmaList;
    const i = hint >= 0 && list.at(hint) === dma ? hint : list.firstIovaAtOrAbove(dma.iova);
    if (list.at(i) === dma) list.removeAt(i);
  }

  /** Whether some dma overlaps [lo, hi] (inclusive). */
  private dmaIn(lo: bigint, hi: bigint): boolean {
    const d = this.dmaList.at(this.lowerBound(lo))!;
    return d !== undefined && d.iova <= hi;
  }

  /** vfio_iommu_iova_dma_valid(): [start, end] inside one window (an empty list accepts all). */
  vfioIommuIovaDmaValid(start: bigint, end: bigint): boolean {
    const list = this.iovaList;
    if (list.length === 0) return true;
    for (let i = 0; i < list.length; i++) if (list[i].start <= start && end <= list[i].end) return true;
    return false;
  }

  /**
   * vfioIommuIovaDmaValid() for a start and inclusive end below 2^53 given as Numbers
   * (exact). The windows are compared as Numbers too: for an exact x and any u64 b, x <= b
   * exactly when x <= Number(b), since a b at or above 2^53 rounds to at least 2^53.
   */
  private iovaDmaValidN(start: number, end: number): boolean {
    const list = this.iovaList;
    if (list.length === 0) return true;
    // iovaList is replaced, never changed in place (attach and detach build a new one).
    if (list !== this.windowsFor) {
      this.windowsFor = list;
      this.windowsN = [];
      for (const w of list) this.windowsN.push(bigintToNumber(w.start), bigintToNumber(w.end));
    }
    const w = this.windowsN;
    for (let i = 0; i < w.length; i += 2) if (w[i] <= start && end <= w[i + 1]) return true;
    return false;
  }

  /** iovaDmaValidN()'s windows as [start, end] Number pairs, and the list they were made from. */
  private windowsFor: IovaRange[] | null = null;
  private windowsN: number[] = [];

  // ------------------------------------------------------------------ accounting and pinning

  /**
   * vfio_lock_acct(): charge (npage > 0) or uncharge the dma's task; 0, -ENOMEM, -EINTR
   * or -ESRCH. With `lockAccounting: "workqueue"`, Linux <= 4.10's version: always 0, the
   * update possibly queued (dma.lockedVm records it at once).
   */
  vfioLockAcct(dma: VfioDma, npage: number, async: boolean): number {
    if (npage === 0) return 0;
    const mm = dma.mm;
    if (this.opts.lockAccounting === "workqueue") {
      if (mm.alive) dma.lockedVm += npage;
      vfioLockAcctWorkqueue(mm, npage);
      return 0;
    }
    if (async && !mm.alive) return -Errno.ESRCH;
    const ret = mmLockAcct(dma.task, mm, dma.lockCap, npage);
    if (ret === 0) dma.lockedVm += npage;
    return ret;
  }

  /**
   * How many of the npage pages from the page-aligned `iova` a vfio_pfn accounts for:
   * vpfn_pages(), every vfio_pfn keyed in the range (mainline), or before it one exact-key
   * vfio_find_vpfn() per page, which finds only vfio_pfns keyed at a page-aligned IOVA
   * (Type1Kernel.vpfnRange).
   */
  private vpfnPages(dma: VfioDma, iova: bigint, npage: number): number {
    if (dma.pfnList.size === 0) return 0;
    const end = iova + BigInt(npage) * PAGE;
    const range = this.kernel.vpfnRange;
    let n = 0;
    for (const k of dma.pfnList.keys()) if (k >= iova && k < end && (range || (k - iova) % PAGE === 0n)) n++;
    return n;
  }

  /**
   * vfio_pin_pages_remote(): pins the physically contiguous run at `vaddr` (at most `npage`
   * pages) in the caller's mm and charges the pages no vfio_pfn already accounts for.
   * Returns the pages pinned (the run starts at `pfnBase`), or -errno with nothing left
   * pinned or charged.
   */
  vfioPinPagesRemote(current: Task, dma: VfioDma, vaddr: bigint, npage: number, limit: number, vaddrN = -1): number {
    const mm = current.mm;
    if (!mm) return -Errno.ENODEV;
    let max = this.opts.disableHugepages ? 1 : npage;
    // vaddrN: Number(vaddr) when the caller has it exact (below 2^53).
    if (vaddrN < 0) {
      if (vaddr > MAX_SAFE) return -Errno.EFAULT;
      vaddrN = u64ToNumber(vaddr);
    }
    // GUP pins (so faults in) a vfio_batch at a time: VFIO_BATCH_MAX_CAPACITY pages from the
    // dma's vaddr on, the limit being checked page by page as the batch is consumed. A map
    // that fails on the limit has faulted exactly the batches it started, which shows later
    // (THP vs huge zero page). When no charge can fail here the cap changes nothing visible.
    if (!dma.lockCap && limit - mm.lockedVm < npage) {
      const off = (vaddr - dma.vaddr) >> PSHIFT;
      max = Math.min(max, Number((off / VFIO_BATCH_MAX_CAPACITY + 1n) * VFIO_BATCH_MAX_CAPACITY - off));
    }
    // vaddr_get_pfns() pins under mmap_read_lock (it waits while another thread writes).
    mm.mmapReadLock();
    const mem = mm.memory;
    const npages = mem.pinUserPages(vaddrN, max, (dma.prot & IOMMU_WRITE) !== 0, true);
    const reserved = mem.pinnedReserved;
    const phys = mem.pinnedPhys;
    mm.mmapReadUnlock();
    if (npages < 0) return npages;
    // Reserved pfns (the zero page) are never charged; externally pinned pages already are.
    const acct = reserved ? 0 : dma.pfnList.size === 0 ? npages : npages - this.vpfnPages(dma, vaddr - dma.vaddr + dma.iova, npages);
    // The kernel checks each page it would charge (locked_vm + lock_acct + 1 > limit); the
    // first one over the limit fails the whole run. Pages it does not charge (reserved,
    // already pinned by a vfio_pfn) are not checked at all, even when locked_vm is already
    // above the limit.
    // The check reads locked_vm without mmap_lock: the workqueue design's queued updates are
    // not in it yet (seed 003); the synchronous design rechecks under the lock.
    if (acct > 0 && !dma.lockCap && mm.lockedVmExceeds(acct, limit)) return -Errno.ENOMEM;
    const r = this.vfioLockAcct(dma, acct, false);
    if (r < 0) return r;
    this.pfnBase = numberToU64(phys);
    this.pfnBaseReserved = reserved;
    return npages;
  }

  /**
   * vfio_pin_pages_remote()'s out parameter *pfn_base (as the synthetic physical address of
   * the run's first page) and whether that pfn is reserved, from its last successful call.
   */
  private pfnBase = 0n;
  private pfnBaseReserved = false;

  /** RLIMIT_MEMLOCK in pages for `task`, a Number, so the limit checks compare Numbers. */
  private memlockPages(task: Task): number {
    return this.rlimitPages.of(task.rlimitMemlock());
  }

  private readonly rlimitPages = new RlimitPages();

  /** vfio_unpin_pages_remote(): unpins a run; with accounting, uncharges what no vfio_pfn holds. */
  vfioUnpinPagesRemote(dma: VfioDma, iova: bigint, npage: number, reserved: boolean, doAccounting: boolean): number {
    // put_pfn() of a reserved pfn returns 0, so such pages count neither as unlocked nor locked.
    const unlocked = reserved ? 0 : npage;
    const locked = reserved ? 0 : this.vpfnPages(dma, iova, npage);
    if (doAccounting) this.vfioLockAcct(dma, locked - unlocked, true);
    return unlocked;
  }

  /** vfio_iommu_map(): maps a run into every domain, unwinding the ones done on failure. `iovaKey`: Number(iova) if known. */
  private vfioIommuMap(iova: bigint, phys: bigint, size: bigint, prot: number, iovaKey?: number): number {
    for (let i = 0; i < this.domainList.length; i++) {
      const r = this.domainList[i].domain.map(iova, phys, size, prot | IOMMU_CACHE, iovaKey);
      if (r < 0) {
        for (let j = i - 1; j >= 0; j--) this.domainList[j].domain.unmap(iova, size);
        return r;
      }
    }
    return 0;
  }

  /**
   * vfio_pin_map_dma(): pin and map [dma.iova, +mapSize) run by run; all or nothing.
   * `iovaKey`: Number(dma.iova), handed to the domains with the first run.
   */
  private vfioPinMapDma(current: Task, dma: VfioDma, mapSize: bigint, iovaKey?: number, mapSizeN = -1, vaddrN = -1): number {
    this.lock.assertHeld();
    const limit = this.memlockPages(current);
    let size = mapSize;
    let ret = 0;
    // mapSizeN/vaddrN: Number(mapSize) and Number(dma.vaddr) when the caller knows them exact
    // (below 2^53), for the first run's page count and address: most maps are one run.
    while (size > 0n) {
      // The first run starts at the dma's own iova and vaddr (no sums).
      const first = dma.size === 0n;
      // size is page-aligned: below 2^53 a Number divides it exactly, with no BigInt shift.
      const npage = first && mapSizeN >= 0 ? mapSizeN / PAGE_SIZE : size < NO_WRAP_LIMIT ? u64ToNumber(size) / PAGE_SIZE : u64ToNumber(size >> PSHIFT);
      const r = this.vfioPinPagesRemote(current, dma, first ? dma.vaddr : dma.vaddr + dma.size, npage, limit, first ? vaddrN : -1);
      if (r < 0) {
        ret = r;
        break;
      }
      const phys = this.pfnBase;
      const reserved = this.pfnBaseReserved;
      // Most maps pin in one run: then the run is the whole rest (no product, no difference).
      const bytes = r === npage ? size : BigInt(r) * PAGE;
      const iova = first ? dma.iova : dma.end;
      const m = this.vfioIommuMap(iova, phys, bytes, dma.prot, first ? iovaKey : undefined);
      if (m < 0) {
        this.vfioUnpinPagesRemote(dma, iova, r, reserved, true);
        ret = m;
        break;
      }
      dma.addRun(dma.size, phys, r, reserved);
      size = bytes === size ? 0n : size - bytes;
      dma.size = first ? bytes : dma.size + bytes;
    }
    dma.iommuMapped = true;
    this.dirtyGen++;
    if (ret) this.vfioRemoveDma(dma);
    return ret;
  }

  /** vfio_unmap_unpin(): unmap every run from every domain and unpin it. */
  private vfioUnmapUnpin(dma: VfioDma, doAccounting: boolean): number {
    if (dma.size === 0n || this.domainList.length === 0) return 0;
    let unlocked = 0;
    const n = dma.runCount;
    for (let i = 0; i < n; i++) {
      const npages = dma.runNpages(i);
      // One run covering the dma (the usual case): its iova and size need no arithmetic.
      const iova = i === 0 ? dma.iova : dma.iova + dma.runOffset(i);
      const size = n === 1 ? dma.size : BigInt(npages) * PAGE;
      for (const d of this.domainList) d.domain.unmap(iova, size);
      unlocked += this.vfioUnpinPagesRemote(dma, iova, npages, dma.runReserved(i), false);
    }
    dma.clearRuns();
    dma.iommuMapped = false;
    this.dirtyGen++;
    if (doAccounting) {
      this.vfioLockAcct(dma, -unlocked, true);
      return 0;
    }
    return unlocked;
  }

  /** vfio_remove_dma(). */
  vfioRemoveDma(dma: VfioDma, hint = -1): void {
    this.lock.assertHeld();
    this.vfioUnmapUnpin(dma, true);
    this.leakedLockedVm += dma.lockedVm;
    this.vfioUnlinkDma(dma, hint);
    this.vfioDmaBitmapFree(dma);
    if (dma.vaddrInvalid) this.vaddrInvalidCount--;
    this.dmaAvail++;
  }

  // ------------------------------------------------------------------ MAP_DMA

  /** vfio_dma_do_map(). `current` is the calling task. */
  vfioDmaDoMap(current: Task, map: DmaMapArgs): number {
    const msiFlag = this.opts.msiReservedIovaFlag;
    if (msiFlag !== null && (map.flags & msiFlag) !== 0) return this.vfioRegisterMsiIova(current, map);
    const setVaddr = (map.flags & VFIO_DMA_MAP_FLAG_VADDR) !== 0;
    const { iova, vaddr, size } = map;
    // The three as Numbers (Number(x)): iovaKey keys the dma list's and the domains'
    // searches and inserts. When all three are below 2^53 (every address a VMM maps) they
    // are exact, nothing can wrap (both wrap checks are false) and the alignment check
    // masks Numbers; otherwise the BigInt checks decide.
    // The ioctl's decoded Numbers are -1 at or above 2^53, where the key is Number(iova) rounded.
    let iovaKey = map.iovaN ?? -1;
    if (iovaKey < 0) iovaKey = bigintToNumber(iova);
    const vaddrN = map.vaddrN ?? bigintToNumber(vaddr);
    const sizeN = map.sizeN ?? bigintToNumber(size);
    const exact = iovaKey >= 0 && iovaKey < NO_WRAP_LIMIT_N && vaddrN >= 0 && vaddrN < NO_WRAP_LIMIT_N && sizeN >= 0 && sizeN < NO_WRAP_LIMIT_N;
    let prot = 0;
    if (map.flags & VFIO_DMA_MAP_FLAG_WRITE) prot |= IOMMU_WRITE;
    if (map.flags & VFIO_DMA_MAP_FLAG_READ) prot |= IOMMU_READ;
    const overflowChecks = this.kernel.overflowChecks;
    if (overflowChecks) {
      if (size === 0n) return -Errno.EINVAL;
      if (!exact && (wrapsU64(iova, size) || wrapsU64(vaddr, size))) return -Errno.EOVERFLOW;
    }
    if ((prot && setVaddr) || (!prot && !setVaddr)) return -Errno.EINVAL;

    this.lock.lock();
    try {
      const pgsize = this.pgsize();
      const maskN = this.pgsizeMaskN;
      // `|` and `&` on Numbers below 2^53 work on their low 32 bits exactly, and the mask fits there.
      const misaligned = exact && maskN >= 0 ? ((sizeN | iovaKey | vaddrN) & maskN) !== 0 : ((size | iova | vaddr) & this.pgmask()) !== 0n;
      if (size === 0n || misaligned) return -Errno.EINVAL;
      if (!overflowChecks && !exact && (wrapsU64(iova, size) || wrapsU64(vaddr, size))) return this.wrapErrno;

      const found = this.vfioFindDma(iova, size, iovaKey);
      if (setVaddr) {
        if (!found) return -Errno.ENOENT;
        if (!found.vaddrInvalid || found.iova !== iova || found.size !== size) return -Errno.EINVAL;
        if (this.kernel.vaddrOwner) {
          const r = this.vfioChangeDmaOwner(current, found);
          if (r < 0) return r;
        }
        found.vaddr = vaddr;
        found.vaddrInvalid = false;
        this.vaddrInvalidCount--;
        return 0;
      }
      if (found) return -Errno.EEXIST;
      if (this.dmaAvail === 0) return -Errno.ENOSPC;
      // Below 2^53 (the end too: a rounded sum is at least 2^53 when the exact one is) in Numbers.
      const valid = exact && iovaKey + sizeN < NO_WRAP_LIMIT_N ? this.iovaDmaValidN(iovaKey, iovaKey + sizeN - 1) : this.vfioIommuIovaDmaValid(iova, iova + size - 1n);
      if (!valid) return -Errno.EINVAL;
      const mm = current.mm;
      if (!mm) return -Errno.ENODEV;

      const dma = new VfioDma(iova, vaddr, prot, current, mm, current.capable(CAP_IPC_LOCK));
      this.dmaAvail--;
      this.vfioLinkDma(dma, this.findDmaIndex, iovaKey);
      let ret = 0;
      if (this.domainList.length === 0) dma.size = size;
      else ret = this.vfioPinMapDma(current, dma, size, iovaKey, exact ? sizeN : -1, exact ? vaddrN : -1);
      if (ret === 0 && this.dirtyPageTracking) {
        // On success dma.size is the size asked for: its page count in Numbers when exact.
        ret = this.vfioDmaBitmapAlloc(dma, pgsize, exact && maskN >= 0 ? sizeN / (maskN + 1) : -1);
        if (ret) this.vfioRemoveDma(dma);
      }
      return ret;
    } finally {
      this.lock.unlock();
    }
  }

  /** vfio_change_dma_owner() (v6.3+): move the charge to the remapping task's mm. */
  private vfioChangeDmaOwner(current: Task, dma: VfioDma): number {
    const newMm = current.mm;
    if (!newMm) return -Errno.ENODEV;
    if (newMm === dma.mm) return 0;
    const lockCap = current.capable(CAP_IPC_LOCK);
    const r = mmLockAcct(current, newMm, lockCap, dma.lockedVm);
    if (r < 0) return r;
    if (dma.mm.alive) mmLockAcct(dma.task, dma.mm, dma.lockCap, -dma.lockedVm);
    dma.task = current;
    dma.mm = newMm;
    dma.lockCap = lockCap;
    return 0;
  }

  /**
   * The 2016 RFC's MAP_DMA(MSI_RESERVED_IOVA) (opt-in): registers [iova, iova+size) as the
   * MSI doorbell window. Needs a domain that wants an MSI cookie (a SW_MSI platform); the
   * window is a dma without memory, removed by UNMAP_DMA like any other.
   */
  private vfioRegisterMsiIova(current: Task, map: DmaMapArgs): number {
    const { iova, size } = map;
    this.lock.lock();
    try {
      const pgsize = this.pgsize();
      if (size === 0n || ((size | iova) & (pgsize - 1n)) !== 0n) return -Errno.EINVAL;
      if (u64(iova + size - 1n) < iova) return this.wrapErrno;
      if (this.dmaList.toArray().some((d) => d.msiReserved)) return -Errno.EEXIST;
      if (this.vfioFindDma(iova, size)) return -Errno.EEXIST;
      if (!this.domainList.some((d) => d.msiCookie !== null)) return -Errno.EINVAL;
      if (this.dmaAvail === 0) return -Errno.ENOSPC;
      if (!current.mm) return -Errno.ENODEV;
      const dma = new VfioDma(iova, 0n, 0, current, current.mm, current.capable(CAP_IPC_LOCK));
      dma.size = size;
      this.dirtyGen++;
      dma.msiReserved = true;
      // A mapping made while tracking gets its bitmap (vfio_dma_do_map), the window too (F15).
      if (this.dirtyPageTracking) {
        const r = this.vfioDmaBitmapAlloc(dma, pgsize);
        if (r < 0) return r;
      }
      this.dmaAvail--;
      this.vfioLinkDma(dma);
      for (const d of this.domainList) if (d.msiCookie !== null) d.msiCookie = iova;
      return 0;
    } finally {
      this.lock.unlock();
    }
  }

  // ------------------------------------------------------------------ UNMAP_DMA

  /** vfio_notify_dma_unmap(): drops iommu->lock around the devices' dma_unmap callbacks. */
  private vfioNotifyDmaUnmap(dma: VfioDma): void {
    this.lock.assertHeld();
    if (this.deviceList.length === 0) return;
    const iova = dma.iova;
    const size = dma.size;
    this.lock.unlock();
    try {
      for (const dev of [...this.deviceList]) dev.dmaUnmap(iova, size);
    } finally {
      this.lock.lock();
    }
  }

  /**
   * vfio_dma_do_unmap(): removes (or, with VADDR, invalidates) whole mappings in the range.
   * `unmap.size` is set to the bytes unmapped; the caller copies it out only on success.
   */
  vfioDmaDoUnmap(current: Task, unmap: DmaUnmapArgs, bitmap: VfioBitmapArgs | null): number {
    const unmapAll = (unmap.flags & VFIO_DMA_UNMAP_FLAG_ALL) !== 0;
    const invalidateVaddr = (unmap.flags & VFIO_DMA_UNMAP_FLAG_VADDR) !== 0;
    const getBitmap = (unmap.flags & VFIO_DMA_UNMAP_FLAG_GET_DIRTY_BITMAP) !== 0;
    const iova = unmap.iova;
    let size = unmap.size;
    let unmapped = 0n;
    let ret = -Errno.EINVAL;

    this.lock.lock();
    try {
      outer: {
        if (invalidateVaddr && this.emulatedGroups.length > 0) {
          ret = -Errno.EBUSY;
          break outer;
        }
        const pgsize = this.pgsize();
        if ((iova & (pgsize - 1n)) !== 0n) break outer;
        if (unmapAll) {
          if (iova !== 0n || size !== 0n) break outer;
          size = U64_MASK;
        } else if (size === 0n || (size & (pgsize - 1n)) !== 0n) {
          break outer;
        } else if (u64(iova + size - 1n) < iova) {
          ret = this.wrapErrno;
          break outer;
        }
        if (getBitmap && (!this.dirtyPageTracking || bitmap === null || bitmap.pgsize !== pgsize)) break outer;

        let dmaLast: VfioDma | null = null;
        let retries = 0;
        again: for (;;) {
          if (this.v2 && !unmapAll) {
            const d1 = this.vfioFindDma(iova, 1n);
            if (d1 && d1.iova !== iova) break outer;
            const d2 = this.vfioFindDma(u64(iova + size - 1n), 0n);
            if (d2 && u64(d2.iova + d2.size) !== u64(iova + size)) break outer;
          }
          ret = 0;
          const first = this.vfioFindDmaFirst(iova, size);
          if (first < 0) break outer;
          let n = first;
          const end = u64(iova + size);
          while (n < this.dmaList.length) {
            const dma = this.dmaList.at(n)!;
            if (unmapAll ? false : dma.iova >= end) break;
            if (!this.v2 && iova > dma.iova) break;
            if (invalidateVaddr) {
              if (dma.vaddrInvalid) {
                for (let k = first; k < n; k++) {
                  this.dmaList.at(k)!.vaddrInvalid = false;
                  this.vaddrInvalidCount--;
                }
                ret = -Errno.EINVAL;
                unmapped = 0n;
                break;
              }
              dma.vaddrInvalid = true;
              this.vaddrInvalidCount++;
              unmapped += dma.size;
              n++;
              continue;
            }
            if (dma.pfnList.size > 0) {
              if (dmaLast === dma) {
                if (++retries > 10) throw new Error("BUG: vfio_dma_do_unmap: dma_unmap notifier left pages pinned after 10 retries");
              } else {
                dmaLast = dma;
                retries = 0;
              }
              this.vfioNotifyDmaUnmap(dma);
              continue again;
            }
            if (getBitmap && bitmap) {
              ret = updateUserBitmap(this, current, bitmap.data, dma, iova, pgsize);
              if (ret) break;
            }
            unmapped += dma.size;
            this.vfioRemoveDma(dma, n); // removal shifts the next dma into slot n
          }
          break;
        }
      }
    } finally {
      this.lock.unlock();
    }
    unmap.size = unmapped;
    return ret;
  }

  // ------------------------------------------------------------------ dirty tracking

  /** vfio_dma_bitmap_alloc(): a zeroed bitmap of dma.size / pgsize bits (+1 spare u64). */
  vfioDmaBitmapAlloc(dma: VfioDma, pgsize: bigint, npagesKnown = -1): number {
    const size = dma.size;
    // Below 2^53 the page count is exact in Numbers (no BigInt division and conversion per
    // MAP_DMA); `npagesKnown`: the caller's, from Numbers it already has.
    const npages =
      npagesKnown >= 0 ? npagesKnown : size < NO_WRAP_LIMIT && pgsize < NO_WRAP_LIMIT ? Math.floor(u64ToNumber(size) / u64ToNumber(pgsize)) : u64ToNumber(size / pgsize);
    if (npages > DIRTY_BITMAP_PAGES_MAX_N) return -Errno.EINVAL;
    const b = Bitmap.create(this.core, npages);
    if (!b) return -Errno.ENOMEM;
    dma.bitmap = b;
    dma.bitmapLowClean = true;
    this.dirtyGen++;
    return 0;
  }

  /** vfio_dma_bitmap_free(). */
  vfioDmaBitmapFree(dma: VfioDma): void {
    if (dma.bitmap) dma.bitmap.dispose();
    dma.bitmap = null;
    this.dirtyGen++;
  }

  /** vfio_dma_populate_bitmap(): set the bits of externally pinned pages. */
  vfioDmaPopulateBitmap(dma: VfioDma, pgsize: bigint): void {
    if (!dma.bitmap || dma.pfnList.size === 0) return;
    for (const vpfn of dma.pfnList.values()) dma.bitmap.set(Number((vpfn.iova - dma.iova) / pgsize), 1);
    dma.bitmapLowClean = false;
    this.dirtyGen++;
  }

  /** vfio_iommu_populate_bitmap_full(): every page of every dma dirty. */
  private vfioIommuPopulateBitmapFull(): void {
    const pgsize = this.pgsize();
    for (const dma of this.dmaList) {
      if (!dma.bitmap) continue;
      dma.bitmap.set(0, Number(dma.size / pgsize));
      dma.bitmapLowClean = false;
    }
    this.dirtyGen++;
  }

  /**
   * Not in Linux (type1 never used IOMMU dirty bits; iommufd does): whether every domain of
   * the container tracks dirty bits in its page tables. Then IOMMU-backed groups can report
   * what they wrote, and GET_BITMAP harvests the page tables instead of marking every
   * mapped page dirty.
   */
  get hwDirty(): boolean {
    return this.domainList.length > 0 && this.domainList.every((d) => d.domain.dirty?.readAndClearDirtyBitmap !== undefined);
  }

  /**
   * Starts or stops hardware dirty tracking on every domain (dirty-capable platforms only).
   * Starting first clears stale dirty bits, as iommufd's iopt_set_dirty_tracking() does, so
   * only writes after START are reported. 0 or -errno; a failed start is undone.
   */
  private vfioIommuSetHwDirtyTracking(enable: boolean): number {
    if (!this.hwDirty) return 0;
    const pgsize = this.pgsize();
    for (let i = 0; i < this.domainList.length; i++) {
      const ops = this.domainList[i].domain.dirty!;
      const r = ops.setDirtyTracking(enable);
      if (r && enable) {
        for (let j = i - 1; j >= 0; j--) this.domainList[j].domain.dirty!.setDirtyTracking(false);
        return r;
      }
      if (enable) for (const dma of this.dmaList) this.vfioDmaHarvestHwDirty(dma, pgsize, 0);
    }
    return 0;
  }

  /**
   * Harvests the page-table dirty bits of `dma` from every domain into the bitmap at
   * `bitmapPtr` (0: read and discard, to clear), one bit per pgsize page, ORed in.
   */
  vfioDmaHarvestHwDirty(dma: VfioDma, pgsize: bigint, bitmapPtr: number): void {
    if (!dma.iommuMapped || dma.size === 0n) return;
    for (const d of this.domainList) d.domain.dirty?.readAndClearDirtyBitmap?.(dma.iova, dma.size, pgsize, bitmapPtr, 0);
  }


  /**
   * A domain that joins while tracking on dirty-capable hardware: tracking on, and the dirty
   * state its replayed mappings start with (ARM's writable-dirty) cleared, so it reports
   * what devices write from now on, as START does for the domains it finds.
   */
  private vfioDomainJoinHwDirty(vd: VfioDomain): void {
    const ops = vd.domain.dirty!;
    ops.setDirtyTracking(true);
    const pgsize = this.pgsize();
    for (const dma of this.dmaList) if (dma.iommuMapped && dma.size > 0n) ops.readAndClearDirtyBitmap?.(dma.iova, dma.size, pgsize, 0, 0);
  }

  /** vfio_dma_bitmap_alloc_all(): allocate and populate every dma's bitmap, unwinding on failure. */
  vfioDmaBitmapAllocAll(pgsize: bigint): number {
    this.lock.assertHeld();
    for (let i = 0; i < this.dmaList.length; i++) {
      const dma = this.dmaList.at(i)!;
      const r = this.vfioDmaBitmapAlloc(dma, pgsize);
      if (r) {
        for (let j = i - 1; j >= 0; j--) this.vfioDmaBitmapFree(this.dmaList.at(j)!);
        return r;
      }
      this.vfioDmaPopulateBitmap(dma, pgsize);
    }
    return 0;
  }

  /** vfio_dma_bitmap_free_all(). */
  vfioDmaBitmapFreeAll(): void {
    for (const dma of this.dmaList) this.vfioDmaBitmapFree(dma);
  }

  /** DIRTY_PAGES START under the lock. */
  dirtyStart(): number {
    this.lock.lock();
    try {
      if (this.dirtyPageTracking) return 0;
      const r = this.vfioDmaBitmapAllocAll(this.pgsize());
      if (r) return r;
      if (!this.allocCopyScratch()) {
        this.vfioDmaBitmapFreeAll();
        return -Errno.ENOMEM;
      }
      const hw = this.vfioIommuSetHwDirtyTracking(true);
      if (hw) {
        this.vfioDmaBitmapFreeAll();
        return hw;
      }
      this.dirtyPageTracking = true;
      return 0;
    } finally {
      this.lock.unlock();
    }
  }

  /** DIRTY_PAGES STOP under the lock. */
  dirtyStop(): number {
    this.lock.lock();
    try {
      if (this.dirtyPageTracking) {
        this.dirtyPageTracking = false;
        this.vfioDmaBitmapFreeAll();
        this.reportCache = null;
        this.vfioIommuSetHwDirtyTracking(false);
      }
      return 0;
    } finally {
      this.lock.unlock();
    }
  }

  /**
   * The locked part of GET_BITMAP: page-size and alignment checks, then
   * vfio_iova_dirty_bitmap() when tracking.
   */
  dirtyGetBitmap(current: Task, iova: bigint, size: bigint, bitmap: VfioBitmapArgs): number {
    this.lock.lock();
    try {
      const pgsize = this.pgsize();
      if (bitmap.pgsize !== pgsize) return -Errno.EINVAL;
      if ((iova & (pgsize - 1n)) !== 0n) return -Errno.EINVAL;
      if (size === 0n || (size & (pgsize - 1n)) !== 0n) return -Errno.EINVAL;
      if (!this.dirtyPageTracking) return -Errno.EINVAL;
      return this.vfioIovaDirtyBitmap(current, bitmap.data, iova, size, pgsize);
    } finally {
      this.lock.unlock();
    }
  }

  /** vfio_iova_dirty_bitmap(): report and clear every whole dma in [iova, iova+size). */
  vfioIovaDirtyBitmap(current: Task, ubuf: bigint, iova: bigint, size: bigint, pgsize: bigint): number {
    this.lock.assertHeld();
    const d1 = this.vfioFindDma(iova, 1n);
    if (d1 && d1.iova !== iova) return -Errno.EINVAL;
    const last = u64(iova + size - 1n);
    const d2 = this.vfioFindDma(last, 0n);
    if (d2 && u64(d2.iova + d2.size) !== u64(iova + size)) return -Errno.EINVAL;
    if (reportAndClearCached(this, current, ubuf, iova, last, pgsize)) return 0;
    // Every dma from the first that ends above iova to the last that starts at or below
    // `last`: none straddles either end (checked above), so each lies inside the range.
    const dmas = this.dmaList.slice(this.lowerBound(iova), this.dmaList.firstIovaAtOrAbove(last + 1n));
    return reportAndClearAll(this, current, ubuf, dmas, iova, pgsize, last);
  }

  // ------------------------------------------------------------------ groups and domains

  /** Whether a group is attached (as IOMMU-backed or emulated). */
  private findGroup(g: PlatformGroup): VfioIommuGroup | null {
    for (const d of this.domainList) for (const x of d.groups) if (x.group === g) return x;
    return this.emulatedGroups.find((x) => x.group === g) ?? null;
  }

  /** vfio_update_pgsize_bitmap(). */
  private vfioUpdatePgsizeBitmap(): void {
    let bitmap = U64_MASK;
    for (const d of this.domainList) bitmap &= d.domain.pgsizeBitmap;
    if (bitmap & (PAGE - 1n)) {
      bitmap &= ~(PAGE - 1n);
      bitmap |= PAGE;
    }
    this.pgsizeBitmap = bitmap;
  }

  /** vfio_iommu_type1_attach_group(). */
  attachGroup(g: PlatformGroup): number {
    this.lock.lock();
    try {
      if (this.vaddrInvalidCount) return -Errno.EBUSY;
      if (this.findGroup(g)) return -Errno.EINVAL;
      if (g.emulated) {
        this.emulatedGroups.push({ group: g, pinnedPageDirtyScope: true });
        return 0;
      }
      // iommu_enable_nesting(): -EINVAL on hardware without it (recorded on the VT-d oracle).
      if (this.nesting && !this.platform.iommu.nesting) return -Errno.EINVAL;
      const domain = allocDomain(this.platform, this.core);
      if (!domain) return -Errno.ENOMEM;
      const geo = domain.aperture;
      // iommu_domain_free() on every way out that does not keep the domain.
      const fail = (errno: number): number => (domain.destroy?.(), errno);
      if (vfioIommuAperConflict(this.iovaList, geo.start, geo.end, (lo, hi) => this.dmaIn(lo, hi))) return fail(-Errno.EINVAL);
      const resv = groupResvRegions(g);
      if (vfioIommuResvConflict(resv, (lo, hi) => this.dmaIn(lo, hi))) return fail(-Errno.EINVAL);
      const list = vfioIommuResvExclude(vfioIommuAperResize(this.iovaList, geo.start, geo.end), resv);
      if (typeof list === "number") return fail(list);
      const swMsi = vfioIommuHasSwMsi(resv);
      if (!this.opts.allowUnsafeInterrupts && !this.platform.iommu.msiIsolated) return fail(-Errno.EPERM);
      const vg: VfioIommuGroup = { group: g, pinnedPageDirtyScope: false };
      const same = this.domainList.find((d) => d.enforceCacheCoherency === domain.enforceCacheCoherency);
      if (same) {
        same.groups.push(vg);
        domain.destroy?.();
      } else {
        const vd: VfioDomain = { domain, groups: [vg], enforceCacheCoherency: domain.enforceCacheCoherency, msiCookie: swMsi };
        const r = this.vfioIommuReplay(vd);
        if (r) return fail(r);
        this.domainList.push(vd);
        // Tested with the new domain listed: a START with only emulated groups attached left
        // hwDirty false, and the first IOMMU domain must still start tracking (F8).
        if (this.dirtyPageTracking && this.hwDirty) this.vfioDomainJoinHwDirty(vd);
        this.vfioUpdatePgsizeBitmap();
      }
      this.iovaList = list;
      this.numNonPinnedGroups++;
      return 0;
    } finally {
      this.lock.unlock();
    }
  }

  /**
   * vfio_iommu_replay(): map every existing dma into a new domain, pinning the ones never
   * mapped (an emulated-only container until now). All or nothing: iommu_mapped is set only
   * after every dma is mapped, and a failure unmaps from the new domain, unpins and
   * uncharges everything this call pinned (the kernel's unwind walk), so pins and charge are
   * as before.
   */
  private vfioIommuReplay(vd: VfioDomain): number {
    const done: Array<[bigint, bigint]> = [];
    const pinned = new Map<VfioDma, PinnedRun[]>();
    const unwind = (ret: number): number => {
      for (const [i, s] of done) vd.domain.unmap(i, s);
      for (const [dma, runs] of pinned) {
        for (const run of runs) this.vfioUnpinPagesRemote(dma, dma.iova + run.offset, run.npages, run.reserved, true);
      }
      return ret;
    };
    for (const dma of this.dmaList) {
      if (dma.msiReserved) continue;
      if (dma.iommuMapped) {
        for (const run of dma.runs) {
          const iova = dma.iova + run.offset;
          const size = BigInt(run.npages) * PAGE;
          const r = vd.domain.map(iova, run.phys, size, dma.prot | IOMMU_CACHE);
          if (r < 0) return unwind(r);
          done.push([iova, size]);
        }
        continue;
      }
      // Never pinned: pin from the dma's own mm.
      const runs: PinnedRun[] = [];
      pinned.set(dma, runs);
      let off = 0n;
      const limit = this.memlockPages(dma.task);
      while (off < dma.size) {
        const r = this.vfioPinPagesRemote(dma.task, dma, dma.vaddr + off, Number((dma.size - off) >> PSHIFT), limit);
        if (r < 0) return unwind(r);
        const phys = this.pfnBase;
        const reserved = this.pfnBaseReserved;
        const size = BigInt(r) * PAGE;
        const m = vd.domain.map(dma.iova + off, phys, size, dma.prot | IOMMU_CACHE);
        if (m < 0) {
          this.vfioUnpinPagesRemote(dma, dma.iova + off, r, reserved, true);
          return unwind(m);
        }
        done.push([dma.iova + off, size]);
        runs.push({ offset: off, phys, npages: r, reserved });
        off += size;
      }
    }
    for (const [dma, runs] of pinned) {
      dma.runs = runs;
      dma.iommuMapped = true;
    }
    this.dirtyGen++;
    return 0;
  }

  /** vfio_iommu_type1_detach_group() (simplified iova-list refresh: rebuilt from the remaining groups). */
  detachGroup(g: PlatformGroup): number {
    this.lock.lock();
    try {
      const ei = this.emulatedGroups.findIndex((x) => x.group === g);
      if (ei >= 0) {
        this.emulatedGroups.splice(ei, 1);
        return 0;
      }
      for (let di = 0; di < this.domainList.length; di++) {
        const d = this.domainList[di];
        const gi = d.groups.findIndex((x) => x.group === g);
        if (gi < 0) continue;
        const vg = d.groups[gi];
        d.groups.splice(gi, 1);
        if (!vg.pinnedPageDirtyScope) {
          this.numNonPinnedGroups--;
          if (this.dirtyPageTracking) this.vfioIommuPopulateBitmapFull();
        }
        if (d.groups.length === 0) {
          if (this.domainList.length === 1) {
            if (this.emulatedGroups.length === 0) {
              while (this.dmaList.length) this.vfioRemoveDma(this.dmaList.at(0)!, 0);
            } else {
              this.vfioIommuUnmapUnpinReaccount();
            }
          } else {
            for (const dma of this.dmaList) for (const run of dma.runs) d.domain.unmap(dma.iova + run.offset, BigInt(run.npages) * PAGE);
          }
          this.domainList.splice(di, 1);
          d.domain.destroy?.();
          this.vfioUpdatePgsizeBitmap();
        }
        this.iovaList = this.rebuildIovaList();
        return 0;
      }
      return -Errno.EINVAL;
    } finally {
      this.lock.unlock();
    }
  }

  /**
   * vfio_iommu_unmap_unpin_reaccount(): the last IOMMU domain goes while emulated groups
   * stay. Every dma is unmapped and unpinned without accounting, then charged again for the
   * pages emulated devices still pin (their vfio_pfn entries, reserved pfns excepted), which
   * later vfio_unpin_pages() calls uncharge one by one.
   */
  private vfioIommuUnmapUnpinReaccount(): void {
    for (const dma of this.dmaList) {
      const unlocked = this.vfioUnmapUnpin(dma, false);
      let locked = 0;
      for (const vpfn of dma.pfnList.values()) if (!vpfn.reserved) locked++;
      this.vfioLockAcct(dma, locked - unlocked, true);
    }
  }

  private rebuildIovaList(): IovaRange[] {
    let list: IovaRange[] = [];
    for (const d of this.domainList) {
      list = vfioIommuAperResize(list, d.domain.aperture.start, d.domain.aperture.end);
      for (const vg of d.groups) {
        const r = vfioIommuResvExclude(list, groupResvRegions(vg.group));
        if (typeof r !== "number") list = r;
      }
    }
    return list;
  }

  // ------------------------------------------------------------------ emulated devices

  /** vfio_register_emulated_iommu_dev()'s type1 part: list a device with a dma_unmap op. */
  registerDevice(dev: VfioEmulatedDevice): number {
    this.lock.lock();
    try {
      if (!this.findGroup(dev.group)) return -Errno.EINVAL;
      this.deviceList.push(dev);
      return 0;
    } finally {
      this.lock.unlock();
    }
  }

  /** vfio_iommu_type1_unregister_device(). */
  unregisterDevice(dev: VfioEmulatedDevice): void {
    this.lock.lock();
    const i = this.deviceList.indexOf(dev);
    if (i >= 0) this.deviceList.splice(i, 1);
    this.lock.unlock();
  }

  /**
   * vfio_pin_page_external(): pin one page of the dma's mm, charging it without a domain
   * (a reserved pfn, the zero page on 6.1, is pinned but not charged).
   */
  private vfioPinPageExternal(dma: VfioDma, vaddr: bigint, doAccounting: boolean): { phys: bigint; reserved: boolean } | number {
    if (!dma.mm.alive) return -Errno.ENODEV;
    if (vaddr > BigInt(Number.MAX_SAFE_INTEGER)) return -Errno.EFAULT;
    dma.mm.mmapReadLock();
    // GUP pins the page holding vaddr: an unaligned IOVA (vfio_pin_pages() takes any) gets that page's pfn.
    const run = dma.mm.memory.pinRun(Number(vaddr & ~(PAGE - 1n)), 1, (dma.prot & IOMMU_WRITE) !== 0, true);
    dma.mm.mmapReadUnlock();
    if (typeof run === "number") return run;
    if (doAccounting && !run.reserved) {
      const r = this.vfioLockAcct(dma, 1, true);
      if (r) return r;
    }
    return { phys: BigInt(run.phys), reserved: run.reserved };
  }

  /** vfio_iommu_type1_pin_pages() with the container layer's E2BIG / EINVAL checks in front. */
  pinPages(dev: VfioEmulatedDevice, userIova: bigint, npage: number, prot: number): PinPagesResult {
    const fail = (ret: number): PinPagesResult => ({ ret, phys: [] });
    if (!Number.isInteger(npage) || npage <= 0) return fail(-Errno.EINVAL);
    if (npage > PAGE_SIZE / 8) return fail(-Errno.E2BIG);
    if (!this.v2) return fail(-Errno.EACCES);
    if (this.kernel.overflowChecks && u64(userIova + BigInt(npage) * PAGE - 1n) < userIova) return fail(-Errno.EOVERFLOW);
    this.lock.lock();
    try {
      if (this.vaddrInvalidCount) return fail(-Errno.EBUSY);
      if (this.deviceList.length === 0) return fail(-Errno.EINVAL);
      const doAccounting = this.domainList.length === 0;
      const phys: bigint[] = [];
      const pgsize = this.pgsize();
      let ret = 0;
      let i = 0;
      for (; i < npage; i++) {
        const iova = u64(userIova + BigInt(i) * PAGE);
        const dma = this.vfioFindDma(iova, PAGE);
        if (!dma) {
          ret = -Errno.EINVAL;
          break;
        }
        if ((dma.prot & prot) !== prot) {
          ret = -Errno.EPERM;
          break;
        }
        const vpfn = dma.pfnList.get(iova);
        if (vpfn) {
          vpfn.refCount++;
          phys.push(vpfn.phys);
          continue;
        }
        const p = this.vfioPinPageExternal(dma, dma.vaddr + (iova - dma.iova), doAccounting);
        if (typeof p === "number") {
          ret = p;
          break;
        }
        dma.vfioPfnList().set(iova, { iova, phys: p.phys, refCount: 1, reserved: p.reserved });
        this.dirtyGen++;
        phys.push(p.phys);
        if (this.dirtyPageTracking && dma.bitmap) {
          dma.bitmap.set(Number((iova - dma.iova) / pgsize), 1);
          dma.bitmapLowClean = false;
        }
      }
      if (ret) {
        for (let j = 0; j < i; j++) this.vfioUnpinPageExternal(u64(userIova + BigInt(j) * PAGE), doAccounting);
        return fail(ret);
      }
      const vg = this.findGroup(dev.group);
      if (vg && !vg.pinnedPageDirtyScope) {
        vg.pinnedPageDirtyScope = true;
        this.numNonPinnedGroups--;
      }
      return { ret: npage, phys };
    } finally {
      this.lock.unlock();
    }
  }

  /**
   * vfio_unpin_page_external(): drop one reference; at zero, unpin and (without a domain)
   * uncharge what put_pfn() unpinned: nothing for a reserved pfn.
   */
  private vfioUnpinPageExternal(iova: bigint, doAccounting: boolean): boolean {
    this.lock.assertHeld();
    const dma = this.vfioFindDma(iova, PAGE);
    if (!dma) return false;
    const vpfn: VfioPfn | undefined = dma.pfnList.get(iova);
    if (!vpfn) return true;
    vpfn.refCount--;
    if (vpfn.refCount === 0) {
      dma.vfioPfnList().delete(iova);
      this.dirtyGen++;
      if (doAccounting && !vpfn.reserved) this.vfioLockAcct(dma, -1, true);
    }
    return true;
  }

  /** vfio_iommu_type1_unpin_pages(): returns the pages processed (the kernel WARNs when < npage). */
  unpinPages(userIova: bigint, npage: number): number {
    if (!this.v2 || !Number.isInteger(npage) || npage <= 0) return 0;
    this.lock.lock();
    try {
      const doAccounting = this.domainList.length === 0;
      let i = 0;
      for (; i < npage; i++) if (!this.vfioUnpinPageExternal(u64(userIova + BigInt(i) * PAGE), doAccounting)) break;
      return i;
    } finally {
      this.lock.unlock();
    }
  }

  /**
   * vfio_iommu_type1_dma_rw(): an emulated device reads (write=false: from guest memory into
   * `data`) or writes `data` at `userIova`. Returns 0 or -errno; writes set dirty bits.
   */
  dmaRw(current: Task | null, userIova: bigint, data: Uint8Array, write: boolean): number {
    this.lock.lock();
    try {
      if (this.vaddrInvalidCount) return -Errno.EBUSY;
      let done = 0;
      while (done < data.length) {
        const iova = userIova + BigInt(done);
        const dma = this.vfioFindDma(iova, 1n);
        if (!dma) return -Errno.EINVAL;
        if ((write && !(dma.prot & IOMMU_WRITE)) || !(dma.prot & IOMMU_READ)) return -Errno.EPERM;
        if (!dma.mm.alive) return -Errno.EPERM;
        if (current && current.mm !== dma.mm) return -Errno.EFAULT;
        const offset = iova - dma.iova;
        const n = Number(BigInt(data.length - done) < dma.size - offset ? BigInt(data.length - done) : dma.size - offset);
        const vaddr = dma.vaddr + offset;
        if (write) {
          if (dma.mm.memory.copyToUser(vaddr, data.subarray(done, done + n)) !== 0) return -Errno.EFAULT;
          if (this.dirtyPageTracking && dma.bitmap) {
            const pgsize = this.pgsize();
            const first = offset / pgsize;
            const lastPage = (offset + BigInt(n) - 1n) / pgsize;
            dma.bitmap.set(Number(first), Number(lastPage - first + 1n));
            dma.bitmapLowClean = false;
            this.dirtyGen++;
          }
        } else {
          const bytes = dma.mm.memory.copyFromUser(vaddr, n);
          if (!bytes) return -Errno.EFAULT;
          data.set(bytes, done);
        }
        done += n;
      }
      return 0;
    } finally {
      this.lock.unlock();
    }
  }

  /** vfio_iommu_type1_release(): remove every dma (container closed). */
  release(): void {
    this.lock.lock();
    try {
      while (this.dmaList.length) {
        const dma = this.dmaList.at(0)!;
        if (dma.pfnList.size > 0) dma.vfioPfnList().clear();
        this.dirtyGen++;
        this.vfioRemoveDma(dma);
      }
    } finally {
      this.lock.unlock();
    }
    this.core.free(this.scratchPtr);
    this.scratchPtr = 0;
  }

  private scratchPtr = 0;

  /**
   * The staging buffer of update_user_bitmap()'s shifted and byte-wise copies
   * (COPY_CHUNK_WORDS words), allocated by DIRTY_PAGES START with the bitmaps and kept until
   * the container goes: GET_BITMAP and unmap-with-bitmap allocate nothing, as in Linux.
   */
  copyScratch(): number {
    return this.scratchPtr;
  }

  /** Allocates the staging buffer if needed; false on ENOMEM. */
  private allocCopyScratch(): boolean {
    if (this.scratchPtr === 0) this.scratchPtr = this.core.alloc(COPY_CHUNK_WORDS * 8, false);
    return this.scratchPtr !== 0;
  }

  /** vfio_domains_have_enforce_cache_coherency(). */
  domainsHaveEnforceCacheCoherency(): number {
    this.lock.lock();
    const r = this.domainList.every((d) => d.enforceCacheCoherency) ? 1 : 0;
    this.lock.unlock();
    return r;
  }
}
