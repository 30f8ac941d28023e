/**
 * The iommufd object model: IOAS (struct io_pagetable: areas, reserved and allowed IOVA
 * ranges, the domains kept in sync with the areas), the iopt_pages behind the areas (their
 * pins and locked-memory charge), paging HWPTs (a PgtableDomain), bound devices and
 * selftest objects. Semantics follow Linux 6.12's drivers/iommu/iommufd/io_pagetable.c and
 * pages.c as the 6.12 test kernel answers them (test/conformance/linux-6.12-iommufd).
 *
 * Model simplifications (documented, not hidden): the "physical address" an area maps is
 * the user VA of its pages (pinning checks and faults the user memory, charges and counts
 * pins, but does not move data), and domain IOVAs stay below 2^53 (the Wasm page-table
 * boundary; every modelled aperture ends below it).
 */
import { Errno } from "../uapi/errno";
import { PgtableDomain } from "../iommu/hw";
import type { PtFormat } from "../iommu/pgtable";
import type { UserAccess } from "../process/file";
import { isTask, Task } from "../process/task";
import { CAP_IPC_LOCK } from "../process/mm";

/** ULONG_MAX. */
export const ULONG_MAX = (1n << 64n) - 1n;
/** PAGE_SIZE of the modelled host. */
export const PAGE = 4096n;
/** HPAGE_SIZE (x86-64 THP). */
export const HPAGE = 2n << 20n;

/**
 * The IOMMU behind a device bound with IommufdCtx.bindDevice() (not a selftest mock): the
 * page-table format and geometry its driver's domain_alloc_paging gives every paging
 * domain it attaches to.
 */
export interface DeviceIommu {
  /** PTE format of the driver's paging domains. */
  format: PtFormat;
  /** domain->pgsize_bitmap. */
  pgsizeBitmap: number;
  /** domain->geometry.aperture_start / aperture_end (inclusive). */
  apertureStart: bigint;
  apertureLast: bigint;
  /** Whether the IOMMU can track dirty pages (IOMMU_HW_CAP_DIRTY_TRACKING). */
  dirtyTracking: boolean;
  /** The device's reserved regions (iommu_get_resv_regions: e.g. VT-d's MSI window), inclusive. */
  reserved?: { start: bigint; last: bigint }[];
  /** What GET_HW_INFO reports (absent: no hw_info op, type NONE). */
  hwInfo?: { type: number; data: Uint8Array };
}

/** How an iopt_pages charges its pins (enum iopt_pages_account_mode). */
export type AccountMode = "none" | "user" | "mm";

/** struct iopt_pages: a range of user memory, shared by the areas mapping (or copying) it. */
export interface IoptPages {
  /** uptr rounded down to PAGE_SIZE. */
  uptr: bigint;
  /** Pages spanned. */
  npages: bigint;
  writable: boolean;
  accountMode: AccountMode;
  /** The task that mapped it (source_task / source_mm / source_user). */
  task: Task | null;
  /** Areas of this pages currently filled into domains (the domains_itree). */
  filled: Set<Area>;
  /** Pages pinned (pages->npinned): the union of the filled areas' page indexes. */
  npinned: bigint;
}

/** One iopt_area: a contiguous IOVA range mapping part of an iopt_pages. */
export interface Area {
  iova: bigint;
  length: bigint;
  /** The "physical" address of its first byte: pages.uptr + startByte. */
  uaddr: bigint;
  prot: number;
  pages: IoptPages | null;
  /** Offset of the area's first byte from pages.uptr. */
  startByte: bigint;
}

/** An IOVA range with its owner (iopt_reserved: a domain's aperture, a device's region, a selftest reservation). */
export interface Reserved {
  start: bigint;
  last: bigint;
  owner: unknown;
}

/** An I/O address space (struct iommufd_ioas / io_pagetable). */
export interface IoasObj {
  kind: "ioas";
  id: number;
  /** Sorted by IOVA, non-overlapping. */
  areas: Area[];
  /** Paging HWPTs whose domains are in this io_pagetable, in the order they were added. */
  hwpts: Set<HwptObj>;
  reserved: Reserved[];
  /** IOMMU_IOAS_ALLOW_IOVAS ranges (inclusive). */
  allowed: { start: bigint; last: bigint }[];
  /** iopt->iova_alignment. */
  iovaAlignment: bigint;
  /** IOMMU_OPTION_HUGE_PAGES = 0. */
  disableLargePages: boolean;
}

/** A paging hardware page table (struct iommufd_hwpt_paging). */
export interface HwptObj {
  kind: "hwpt";
  id: number;
  ioas: IoasObj;
  domain: PgtableDomain;
  /** Created by attaching a device straight to an IOAS (destroyed with its last device). */
  auto: boolean;
  devices: Set<DeviceObj>;
  /** Map in PAGE_SIZE pieces (a selftest mock domain: user pages are not physically contiguous on a real host). */
  smallMaps: boolean;
}

/** A bound device (struct iommufd_device): a selftest mock device, or one bound with its IOMMU. */
export interface DeviceObj {
  kind: "device";
  id: number;
  /** MOCK_FLAGS_DEVICE_* (0 for a non-mock device). */
  flags: number;
  /** The device's IOMMU when it is not a selftest mock (absent: mock domain geometry). */
  iommu?: DeviceIommu;
  hwpt: HwptObj | null;
  stdev: SelftestObj | null;
}

/** The selftest's IOMMUFD_OBJ_SELFTEST (owns a mock device). */
export interface SelftestObj {
  kind: "selftest";
  id: number;
  idev: DeviceObj;
}

/** Any object in the context's table. */
export type IommufdObj = IoasObj | HwptObj | DeviceObj | SelftestObj;

/** A new, empty IOAS. */
export function newIoas(id: number): IoasObj {
  return { kind: "ioas", id, areas: [], hwpts: new Set(), reserved: [], allowed: [], iovaAlignment: 1n, disableLargePages: false };
}

const overlaps = (a: bigint, b: bigint, c: bigint, d: bigint): boolean => a <= d && c <= b;
const areaLast = (a: Area): bigint => a.iova + a.length - 1n;

/** iopt_area_iter_first(). */
export function areaIterFirst(ioas: IoasObj, start: bigint, last: bigint): Area | undefined {
  return ioas.areas.find((a) => overlaps(a.iova, areaLast(a), start, last));
}

function reservedIterFirst(ioas: IoasObj, start: bigint, last: bigint): Reserved | undefined {
  return ioas.reserved.find((r) => overlaps(r.start, r.last, start, last));
}

function allowedIterFirst(ioas: IoasObj, start: bigint, last: bigint): { start: bigint; last: bigint } | undefined {
  return ioas.allowed.find((r) => overlaps(r.start, r.last, start, last));
}

/** iopt_reserve_iova(): EADDRINUSE over an area or an allowed range. */
export function reserveIova(ioas: IoasObj, start: bigint, last: bigint, owner: unknown): number {
  if (areaIterFirst(ioas, start, last) || allowedIterFirst(ioas, start, last)) return -Errno.EADDRINUSE;
  ioas.reserved.push({ start, last, owner });
  return 0;
}

/** iopt_remove_reserved_iova(): drops every range of `owner`. */
export function removeReserved(ioas: IoasObj, owner: unknown): void {
  ioas.reserved = ioas.reserved.filter((r) => r.owner !== owner);
}

/** The holes of the reserved ranges in [0, ULONG_MAX] (IOMMU_IOAS_IOVA_RANGES). */
export function iovaRanges(ioas: IoasObj): { start: bigint; last: bigint }[] {
  return holes(ioas.reserved, 0n, ULONG_MAX);
}

/** The holes of `used` (inclusive ranges, any order, may overlap) within [start, last]. */
function holes(used: readonly { start: bigint; last: bigint }[], start: bigint, last: bigint): { start: bigint; last: bigint }[] {
  const sorted = used.filter((r) => overlaps(r.start, r.last, start, last)).sort((a, b) => (a.start < b.start ? -1 : a.start > b.start ? 1 : 0));
  const out: { start: bigint; last: bigint }[] = [];
  let pos = start;
  let done = false;
  for (const r of sorted) {
    if (r.start > pos) out.push({ start: pos, last: r.start - 1n });
    if (r.last >= last) {
      done = true;
      break;
    }
    if (r.last + 1n > pos) pos = r.last + 1n;
  }
  if (!done && pos <= last) out.push({ start: pos, last });
  return out;
}

/** The merged spans of `used` within [start, last] (interval_tree_span_iter's used spans). */
function usedSpans(used: readonly { start: bigint; last: bigint }[], start: bigint, last: bigint): { start: bigint; last: bigint }[] {
  const out: { start: bigint; last: bigint }[] = [];
  const h = holes(used, start, last);
  let pos = start;
  for (const x of h) {
    if (x.start > pos) out.push({ start: pos, last: x.start - 1n });
    if (x.last === last) return out;
    pos = x.last + 1n;
  }
  if (h.length === 0 || h[h.length - 1].last < last) out.push({ start: pos, last });
  return out;
}

const alignUp = (v: bigint, a: bigint): bigint => (v + a - 1n) & ~(a - 1n);
const ffs64 = (v: bigint): bigint => {
  let n = 0n;
  while (((v >> n) & 1n) === 0n) n++;
  return n;
};
const roundupPow2 = (v: bigint): bigint => {
  let p = 1n;
  while (p < v) p <<= 1n;
  return p;
};

/** iopt_check_iova(): a FIXED_IOVA range. */
export function checkIova(ioas: IoasObj, iova: bigint, length: bigint): number {
  if (iova & (ioas.iovaAlignment - 1n)) return -Errno.EINVAL;
  const last = iova + length - 1n;
  if (last > ULONG_MAX) return -Errno.EOVERFLOW;
  if (reservedIterFirst(ioas, iova, last)) return -Errno.EINVAL;
  if (areaIterFirst(ioas, iova, last)) return -Errno.EEXIST;
  return 0;
}

/**
 * iopt_alloc_iova(): the lowest IOVA, inside the allowed ranges (or [PAGE_SIZE,
 * ULONG_MAX - PAGE_SIZE] without any), outside reserved ranges and areas, aligned to
 * min(roundup_pow_of_two(length), lowest set bit of addr) capped at HPAGE_SIZE (the 6.12
 * test kernel has CONFIG_TRANSPARENT_HUGEPAGE), keeping addr's offset in its page.
 */
export function allocIova(ioas: IoasObj, addr: bigint, length: bigint): bigint | number {
  const pageOffset = addr % PAGE;
  if (length === 0n || length >= ULONG_MAX / 2n) return -Errno.EOVERFLOW;
  let align = addr === 0n ? roundupPow2(length) : roundupPow2(length) < 1n << ffs64(addr) ? roundupPow2(length) : 1n << ffs64(addr);
  const maxAlignment = HPAGE;
  if (align >= maxAlignment) align = maxAlignment;
  if (align < ioas.iovaAlignment) return -Errno.EINVAL;
  const lo = PAGE;
  const hi = ULONG_MAX - PAGE;
  const allowed = ioas.allowed.length ? usedSpans(ioas.allowed, lo, hi) : [{ start: lo, last: hi }];
  const used = [...ioas.reserved, ...ioas.areas.map((a) => ({ start: a.iova, last: areaLast(a) }))];
  for (const sp of allowed) {
    if (sp.last - sp.start < length - 1n) continue;
    const s = alignUp(sp.start, align) | pageOffset;
    if (s > sp.last || sp.last - s < length - 1n) continue;
    for (const h of holes(used, sp.start, sp.last)) {
      if (h.last - h.start < length - 1n) continue;
      const st = alignUp(h.start, align) | pageOffset;
      if (st > h.last || h.last - st < length - 1n) continue;
      return st;
    }
  }
  return -Errno.ENOSPC;
}

/** iopt_check_iova_alignment(): every area fits a new alignment, else EADDRINUSE. */
function checkIovaAlignment(ioas: IoasObj, align: bigint): number {
  const m = align - 1n;
  for (const a of ioas.areas) if (a.iova & m || a.length & m || a.startByte % PAGE & m) return -Errno.EADDRINUSE;
  return 0;
}

/** iopt_calculate_iova_alignment() (with `extra`, a domain about to be added). */
export function calculateIovaAlignment(ioas: IoasObj): number {
  let a = ioas.disableLargePages ? PAGE : 1n;
  for (const h of ioas.hwpts) {
    const d = BigInt(h.domain.table.minPageSize);
    if (d > a) a = d;
  }
  if (a > ioas.iovaAlignment) {
    const r = checkIovaAlignment(ioas, a);
    if (r < 0) return r;
  }
  ioas.iovaAlignment = a;
  return 0;
}

// ------------------------------------------------------------------ pins and charges

/** The page-index range [first, last] an area uses in its pages. */
function pageSpan(a: Area): [bigint, bigint] {
  return [a.startByte / PAGE, (a.startByte + a.length - 1n) / PAGE];
}

/** Pages covered by the union of the filled areas of `p` (plus `extra`, minus `without`). */
function unionPages(p: IoptPages, extra?: Area, without?: Area): bigint {
  const spans = [...p.filled].filter((a) => a !== without).map(pageSpan);
  if (extra) spans.push(pageSpan(extra));
  spans.sort((x, y) => (x[0] < y[0] ? -1 : x[0] > y[0] ? 1 : 0));
  let n = 0n;
  let cur: [bigint, bigint] | null = null;
  for (const s of spans) {
    if (cur && s[0] <= cur[1] + 1n) {
      if (s[1] > cur[1]) cur[1] = s[1];
    } else {
      if (cur) n += cur[1] - cur[0] + 1n;
      cur = [s[0], s[1]];
    }
  }
  if (cur) n += cur[1] - cur[0] + 1n;
  return n;
}

/** Per-user locked_vm (struct user_struct), keyed by the process (one user per simulated process). */
const userLockedVm = new WeakMap<object, bigint>();

/** The pages charged to the process's user (IOPT_PAGES_ACCOUNT_USER), for tests. */
export function userLockedPages(task: object): bigint {
  return userLockedVm.get(task) ?? 0n;
}

/** iopt_pages_update_pinned(): charge or uncharge `n` pages; pinned_vm always follows. */
function updatePinned(p: IoptPages, n: bigint, inc: boolean): number {
  const t = p.task;
  const mm = t?.mm ?? null;
  if (n === 0n) return 0;
  if (p.accountMode === "user" && t) {
    const cur = userLockedVm.get(t) ?? 0n;
    if (inc) {
      const limit = t.rlimitMemlock() >> 12n;
      if (cur + n > limit) return -Errno.ENOMEM;
      userLockedVm.set(t, cur + n);
    } else userLockedVm.set(t, cur > n ? cur - n : 0n);
  } else if (p.accountMode === "mm" && t && mm) {
    if (!mm.alive && inc) return -Errno.EINVAL;
    const r = mm.accountLockedVm(Number(n), inc, t.rlimitMemlock(), false);
    if (r < 0) return r;
  }
  if (mm) {
    if (inc) mm.pinnedVm += Number(n);
    else mm.pinnedVm = Math.max(0, mm.pinnedVm - Number(n));
  }
  return 0;
}

/**
 * Pins what filling `a` into the domains needs (pfn_reader over the pages not yet pinned
 * by another filled area): EFAULT when the user memory cannot be pinned, ENOMEM when the
 * charge exceeds RLIMIT_MEMLOCK. Nothing is left pinned on failure.
 */
function pinArea(a: Area): number {
  const p = a.pages!;
  const before = p.npinned;
  const after = unionPages(p, a);
  const t = p.task;
  const mm = t?.mm;
  if (!mm || !mm.alive) return -Errno.EFAULT;
  // pin_user_pages(FOLL_LONGTERM [| FOLL_WRITE]) over the area's pages.
  const [first, last] = pageSpan(a);
  const start = p.uptr + first * PAGE;
  const bytes = (last - first + 1n) * PAGE;
  if (start + bytes > BigInt(Number.MAX_SAFE_INTEGER)) return -Errno.EFAULT;
  const len = Number(bytes);
  if (mm.memory.accessibleLength(Number(start), len, p.writable) < len) return -Errno.EFAULT;
  mm.memory.backing.fault(Number(start), len, true); // a long-term pin never keeps the zero page (6.12)
  const r = updatePinned(p, after - before, true);
  if (r < 0) return r;
  p.npinned = after;
  p.filled.add(a);
  return 0;
}

/** Unpins what only `a` kept pinned. */
function unpinArea(a: Area): void {
  const p = a.pages!;
  if (!p.filled.has(a)) return;
  const after = unionPages(p, undefined, a);
  updatePinned(p, p.npinned - after, false);
  p.npinned = after;
  p.filled.delete(a);
}

/** Maps one area into one HWPT's domain; -errno with nothing left mapped. */
function mapArea(h: HwptObj, a: Area, small: boolean): number {
  const d = h.domain;
  if (!small) return d.map(Number(a.iova), Number(a.uaddr), Number(a.length), a.prot);
  // One user page at a time (batch_iommu_map_small, or a mock domain whose pages are never physically contiguous).
  let off = 0n;
  while (off < a.length) {
    const pageEnd = ((a.uaddr + off) / PAGE + 1n) * PAGE;
    const n = (pageEnd - (a.uaddr + off) < a.length - off ? pageEnd - (a.uaddr + off) : a.length - off);
    const r = d.map(Number(a.iova + off), Number(a.uaddr + off), Number(n), a.prot);
    if (r < 0) {
      if (off) d.unmap(Number(a.iova), Number(off));
      return r;
    }
    off += n;
  }
  return 0;
}

/** iopt_area_fill_domains(): pin the area's pages and map it into every domain; all or nothing. */
function fillAreaDomains(ioas: IoasObj, a: Area): number {
  if (ioas.hwpts.size === 0 || !a.pages) return 0;
  const r = pinArea(a);
  if (r < 0) return r;
  const done: HwptObj[] = [];
  for (const h of ioas.hwpts) {
    const m = mapArea(h, a, ioas.disableLargePages || h.smallMaps);
    if (m < 0) {
      for (const d of done) d.domain.unmap(Number(a.iova), Number(a.length));
      unpinArea(a);
      return m;
    }
    done.push(h);
  }
  return 0;
}

/** iopt_area_unfill_domains(): unmap the area from every domain and drop its pins. */
function unfillAreaDomains(ioas: IoasObj, a: Area): void {
  if (!a.pages || !a.pages.filled.has(a)) return;
  for (const h of ioas.hwpts) h.domain.unmap(Number(a.iova), Number(a.length));
  unpinArea(a);
}

/**
 * iopt_table_add_domain() for an HWPT already in `ioas.hwpts`'s future: alignment, the
 * aperture reserved, every area mapped (pinning the areas on the first domain). On failure
 * nothing changed.
 */
export function tableAddDomain(ioas: IoasObj, h: HwptObj, apertureStart: bigint, apertureLast: bigint): number {
  const min = BigInt(h.domain.table.minPageSize);
  if (min > PAGE) return -Errno.EINVAL;
  const newAlign = ioas.iovaAlignment > min ? ioas.iovaAlignment : min;
  if (newAlign !== ioas.iovaAlignment) {
    const r = checkIovaAlignment(ioas, newAlign);
    if (r < 0) return r;
  }
  if (apertureStart) {
    const r = reserveIova(ioas, 0n, apertureStart - 1n, h.domain);
    if (r < 0) {
      removeReserved(ioas, h.domain);
      return r;
    }
  }
  if (apertureLast !== ULONG_MAX) {
    const r = reserveIova(ioas, apertureLast + 1n, ULONG_MAX, h.domain);
    if (r < 0) {
      removeReserved(ioas, h.domain);
      return r;
    }
  }
  const first = ioas.hwpts.size === 0;
  const done: Area[] = [];
  for (const a of ioas.areas) {
    let r = 0;
    if (first) {
      r = pinArea(a);
      if (r === 0) {
        r = mapArea(h, a, ioas.disableLargePages || h.smallMaps);
        if (r < 0) unpinArea(a);
      }
    } else r = mapArea(h, a, ioas.disableLargePages || h.smallMaps);
    if (r < 0) {
      for (const d of done) {
        h.domain.unmap(Number(d.iova), Number(d.length));
        if (first) unpinArea(d);
      }
      removeReserved(ioas, h.domain);
      return r;
    }
    done.push(a);
  }
  ioas.iovaAlignment = newAlign;
  ioas.hwpts.add(h);
  return 0;
}

/** iopt_table_remove_domain(): unmap everything (unpinning with the last domain), drop the aperture, recompute the alignment. */
export function tableRemoveDomain(ioas: IoasObj, h: HwptObj): void {
  if (!ioas.hwpts.has(h)) return;
  const last = ioas.hwpts.size === 1;
  for (const a of ioas.areas) {
    h.domain.unmap(Number(a.iova), Number(a.length));
    if (last) unpinArea(a);
  }
  ioas.hwpts.delete(h);
  removeReserved(ioas, h.domain);
  calculateIovaAlignment(ioas);
}

/** One piece of an IOAS_MAP or IOAS_COPY: part of an iopt_pages. */
export interface PagesElm {
  pages: IoptPages;
  startByte: bigint;
  length: bigint;
}

/** iopt_alloc_pages(): the user range as a new iopt_pages, or -errno. */
export function allocPages(task: UserAccess, uptr: bigint, length: bigint, writable: boolean, ctxMode: AccountMode): IoptPages | number {
  if (length > ULONG_MAX - PAGE || length === 0n) return -Errno.EINVAL;
  if (uptr + length > ULONG_MAX) return -Errno.EOVERFLOW;
  const t = isTask(task) ? task : null;
  const base = uptr - (uptr % PAGE);
  let mode: AccountMode = t && t.capable(CAP_IPC_LOCK) ? "none" : "user";
  if (ctxMode === "mm" && mode === "user") mode = "mm";
  return { uptr: base, npages: (length + (uptr - base) + PAGE - 1n) / PAGE, writable, accountMode: mode, task: t, filled: new Set(), npinned: 0n };
}

/**
 * iopt_map_pages(): the areas for `elms` at `iova` (FIXED) or at an allocated IOVA, then
 * filled into every domain. All or nothing; returns the IOVA or -errno.
 */
export function mapPages(ioas: IoasObj, elms: PagesElm[], length: bigint, iova: bigint, prot: number, alloc: boolean): bigint | number {
  if (length & (ioas.iovaAlignment - 1n) || length === 0n) return -Errno.EINVAL;
  let at = iova;
  if (alloc) {
    const e = elms[0];
    const r = allocIova(ioas, e.pages.uptr + e.startByte, length);
    if (typeof r === "number") return r;
    at = r;
  } else {
    const r = checkIova(ioas, iova, length);
    if (r < 0) return r;
  }
  // iopt_insert_area() for each piece.
  const areas: Area[] = [];
  let pos = at;
  for (const e of elms) {
    if (prot & 2 && !e.pages.writable) return -Errno.EPERM;
    if (e.startByte % PAGE & (ioas.iovaAlignment - 1n)) return -Errno.EINVAL;
    if (pos + e.length - 1n > ULONG_MAX) return -Errno.EOVERFLOW;
    areas.push({ iova: pos, length: e.length, uaddr: e.pages.uptr + e.startByte, prot, pages: e.pages, startByte: e.startByte });
    pos += e.length;
  }
  const done: Area[] = [];
  for (const a of areas) {
    const r = fillAreaDomains(ioas, a);
    if (r < 0) {
      for (const d of done) unfillAreaDomains(ioas, d);
      return r;
    }
    done.push(a);
  }
  ioas.areas.push(...areas);
  ioas.areas.sort((x, y) => (x.iova < y.iova ? -1 : 1));
  return at;
}

/**
 * iopt_unmap_iova_range(): removes the areas inside [start, last] in IOVA order; an area
 * crossing either end stops it with ENOENT (the areas before it stay removed, as in
 * Linux); nothing there is ENOENT. Returns the bytes unmapped and the errno (0 or -errno).
 */
export function unmapIovaRange(ioas: IoasObj, start: bigint, last: bigint): { unmapped: bigint; rc: number } {
  let rc = -Errno.ENOENT;
  let unmapped = 0n;
  for (;;) {
    const a = areaIterFirst(ioas, start, last);
    if (!a) break;
    if (a.iova < start || areaLast(a) > last) {
      rc = -Errno.ENOENT;
      return { unmapped, rc };
    }
    unmapped += a.length;
    unfillAreaDomains(ioas, a);
    ioas.areas = ioas.areas.filter((x) => x !== a);
  }
  if (unmapped) rc = 0;
  return { unmapped, rc };
}

/** iopt_get_pages(): the pieces of the areas covering [iova, iova+length) contiguously, or -errno. */
export function getPages(ioas: IoasObj, iova: bigint, length: bigint): PagesElm[] | number {
  if (length === 0n) return -Errno.EINVAL;
  const last = iova + length - 1n;
  if (last > ULONG_MAX) return -Errno.EOVERFLOW;
  const out: PagesElm[] = [];
  let cur = iova;
  for (;;) {
    const a = ioas.areas.find((x) => x.iova <= cur && areaLast(x) >= cur);
    if (!a || !a.pages) return -Errno.ENOENT;
    const e = areaLast(a) < last ? areaLast(a) : last;
    out.push({ pages: a.pages, startByte: a.startByte + (cur - a.iova), length: e - cur + 1n });
    if (e === last) return out;
    cur = e + 1n;
  }
}

/** iopt_set_allow_iova(): replace the allowed ranges unless a reserved range intersects one (EADDRINUSE). */
export function setAllowIova(ioas: IoasObj, ranges: { start: bigint; last: bigint }[]): number {
  for (const r of ranges) if (reservedIterFirst(ioas, r.start, r.last)) return -Errno.EADDRINUSE;
  ioas.allowed = ranges;
  return 0;
}

/** iopt_disable_large_pages() / iopt_enable_large_pages(). */
export function setLargePages(ioas: IoasObj, enable: boolean): number {
  if (enable) {
    ioas.disableLargePages = false;
    calculateIovaAlignment(ioas);
    return 0;
  }
  if (ioas.disableLargePages) return 0;
  if (ioas.hwpts.size && ioas.areas.length) return -Errno.EINVAL;
  ioas.disableLargePages = true;
  const r = calculateIovaAlignment(ioas);
  if (r < 0) ioas.disableLargePages = false;
  return r;
}

/** Every pinned page of the IOAS's areas released (the IOAS is destroyed or the context closed). */
export function destroyIoasAreas(ioas: IoasObj): void {
  for (const a of ioas.areas) unfillAreaDomains(ioas, a);
  ioas.areas = [];
}
