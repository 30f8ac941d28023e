/**
 * Fuzz target `type1`: a simulated process with /dev/vfio/{vfio,0,1,7} (group 7 emulated,
 * an mdev-style device registered through the in-kernel interface), driven through the
 * container's raw ioctls with argument structs in the process's memory (good, unmapped,
 * read-only, PROT_NONE and VMA-straddling pointers), mmap/munmap/mprotect of the guest,
 * RLIMIT_MEMLOCK and CAP_IPC_LOCK changes, group attach/detach, container close,
 * emulated pins and dma_rw, device DMA writes through dirty-capable page tables, and
 * allocation failures injected into the Wasm core.
 *
 * After each call: a failed call left the state as it was (test/type1/state.ts snapshot,
 * minus the partial effects of partial-effects.ts), the invariants hold, and every page a
 * device wrote while tracking is set in the next successful harvest's user bitmap
 * (`owed`, a ledger kept here from the calls alone).
 */
import { Rng } from "../../src/util/random";
import { WasmCore } from "../../src/wasm/core";
import { Process, SyscallResult } from "../../src/process/process";
import { PROT_NONE, PROT_READ, PROT_WRITE } from "../../src/process/vma";
import { Platform, smmuPlatform, vtdPlatform } from "../../src/iommu/platform";
import { withHardwareDirty, HwIommuDomain } from "../../src/iommu/hw/iommu-domain";
import { DmaDevice, DMA_OK } from "../../src/iommu/hw/device";
import type { PtFormat } from "../../src/iommu/pgtable";
import { installVfio, VfioContainer } from "../../src/type1/container";
import type { VfioEmulatedDevice, VfioIommu } from "../../src/type1/vfio-iommu";
import type { VfioDma } from "../../src/type1/dma";
import {
  DirtyBitmap,
  DirtyBitmapGet,
  DmaMap,
  DmaUnmap,
  VfioBitmap,
  VFIO_CHECK_EXTENSION,
  VFIO_GROUP_SET_CONTAINER,
  VFIO_GROUP_UNSET_CONTAINER,
  VFIO_IOMMU_DIRTY_PAGES,
  VFIO_IOMMU_GET_INFO,
  VFIO_IOMMU_MAP_DMA,
  VFIO_IOMMU_UNMAP_DMA,
  VFIO_SET_IOMMU,
  VFIO_DMA_UNMAP_FLAG_GET_DIRTY_BITMAP,
} from "../../src/uapi/vfio";
import { Errno, errnoName } from "../../src/uapi/errno";
import { invariants, pinsDiverge, pinsOutsideRuns, snapshot } from "../type1/state";
import type { Finding, Op, Session, Target } from "./engine";
import { acceptType1Quirk, type1FailureAllowance } from "./partial-effects";
import { AllocFaults, occupyLowMemory } from "./faults";
import { avoidKnownHang } from "./known-open";
import { EDGES, PAGE, U64, anyU64, argsz, flags, near, pages, pick, size, u64, weighted } from "./values";
import { isEqual, firstDiff } from "./diff";

/** The oracle's arena base (so type1 reproducers can be printed as .trace scripts). */
export const ARENA = 0x1000_0000_0000n;
const ARENA_SIZE = 64n << 20n;
/** Bitmaps live in the arena's upper quarter. */
const BITMAPS = ARENA + (48n << 20n);
const SCRATCH = 0x7e00_0000_0000n;
const SCRATCH_SIZE = 0x20000n;
const ARG = SCRATCH + 0x10000n;
const FDBUF = SCRATCH + 0x18000n;
const RO_PAGE = 0x7f00_0000_0000n;
const NONE_PAGE = 0x7f00_0001_0000n;
const UNMAPPED = 0x7d00_0000_0000n;
/** A page the struct is written into, then made read-only: readable arguments, no write-back. */
const RO_CONTENT = 0x7f00_0002_0000n;
const GROUP_IDS = [0, 1, 7];
const EMULATED_GROUP = 2; // index of group 7

/** The world of one episode. */
export interface Type1Config {
  platform: "vtd" | "smmu";
  /** A dirty-capable page-table format for IOMMU domains (type1 then harvests page-table dirty bits). */
  hw: PtFormat | null;
  profile: "linux-6.1" | "mainline";
  bitmapCopy: "simd" | "word" | "byte";
  /** What is attached before the first call: group 0 (the oracle's set-up), the emulated group, or nothing. */
  setup: "standard" | "emulated" | "none";
  /** Bytes of the guest written before the first call (real pages: pins charge them). */
  prefill: number;
  /** Everything allocated above 2 GiB of linear memory. */
  high?: boolean;
}

/** Where an argument struct or bitmap is placed. */
type Where = "ok" | "unmapped" | "ro" | "none" | "straddle" | "rocontent";

interface BitmapArg {
  pgsize: bigint;
  bsize: bigint;
  where: Where | "abs";
  /** Offset into the bitmap area (ok), or the absolute address (abs). */
  off: bigint;
}

function platformOf(cfg: Type1Config): Platform {
  let p = cfg.platform === "smmu" ? smmuPlatform() : vtdPlatform();
  if (cfg.hw) p = withHardwareDirty(p, cfg.hw);
  const resv = p.groups[0].devices[0].resv;
  p.groups.push({ id: 1, devices: [{ name: "0000:00:04.0", resv: resv.map((r) => ({ ...r })) }] });
  p.groups.push({ id: 7, devices: [{ name: "mdev0", resv: [] }], emulated: true });
  return p;
}

const hex = (v: bigint): string => `0x${v.toString(16)}`;

/** A live type1 world. */
export class Type1Session implements Session {
  readonly core = new WasmCore();
  readonly faults: AllocFaults;
  readonly proc: Process;
  readonly platform: Platform;
  container: VfioContainer | null = null;
  cfd = -1;
  readonly gfds: number[] = [];
  /** Shadow: tracking is on (a START returned 0, no STOP/teardown since). */
  tracking = false;
  /** Shadow: pages (IOVA) a device wrote or pinned while tracking, not yet reported. */
  readonly owed = new Set<bigint>();
  /** Shadow: the emulated device's pins, IOVA -> references. */
  readonly pins = new Map<bigint, number>();
  /** The iommu the shadow state belongs to. */
  private shadowOf: VfioIommu | null = null;
  /** Dmas of shadowOf seen with diverged pins (test/type1/state.ts pinsDiverge): Linux may leave their charge behind. */
  readonly diverged = new Set<VfioDma>();
  /** Pages earlier type1 states of this process left charged that way (removed diverged dmas). */
  leakedBefore = 0;
  registered = false;
  readonly dev: VfioEmulatedDevice;
  readonly dma = new Map<number, DmaDevice>();

  constructor(readonly cfg: Type1Config) {
    if (cfg.high) occupyLowMemory(this.core);
    this.faults = new AllocFaults(this.core);
    this.proc = new Process({ core: this.core });
    this.platform = platformOf(cfg);
    installVfio(this.proc, this.platform, { profile: cfg.profile, bitmapCopy: cfg.bitmapCopy });
    const p = this.proc;
    p.mmap(ARENA, ARENA_SIZE, PROT_READ | PROT_WRITE);
    p.mmap(SCRATCH, SCRATCH_SIZE, PROT_READ | PROT_WRITE);
    p.mmap(RO_PAGE, 0x1000, PROT_READ);
    p.mmap(NONE_PAGE, 0x1000, PROT_NONE);
    p.mmap(RO_CONTENT, 0x1000, PROT_READ);
    if (cfg.prefill) p.fill(ARENA, cfg.prefill, 0x5a);
    this.openContainer();
    for (const id of GROUP_IDS) this.gfds.push(p.open(`/dev/vfio/${id}`).ret);
    const session = this;
    this.dev = {
      group: this.platform.groups[EMULATED_GROUP],
      dmaUnmap(iova: bigint, len: bigint): void {
        // A well-behaved vendor driver: unpin everything it pinned in the range. A pin's
        // iova need not be page-aligned (vfio_pin_pages() since 6.0 takes a starting IOVA
        // and type1 keys the vfio_pfn by it as given), so the range's dma holds every pin
        // whose page [p, p + PAGE) overlaps it, even one starting below dma->iova; leaving
        // that one pinned makes vfio_dma_do_unmap() retry until BUG_ON (seed 90210).
        for (const [p, n] of [...session.pins]) {
          if (p + PAGE <= iova || p >= iova + len) continue;
          for (let i = 0; i < n; i++) session.iommu?.unpinPages(p, 1);
          session.pins.delete(p);
        }
      },
    };
    if (cfg.setup !== "none") {
      this.setContainer(cfg.setup === "standard" ? 0 : EMULATED_GROUP);
      p.ioctl(this.cfd, VFIO_SET_IOMMU, 3n);
    }
    this.syncShadow();
  }

  get iommu(): VfioIommu | null {
    return this.container?.iommu ?? null;
  }

  openContainer(): number {
    const r = this.proc.open("/dev/vfio/vfio");
    if (r.ret >= 0) {
      this.cfd = r.ret;
      this.container = this.proc.fdget(r.ret) as VfioContainer;
    }
    return r.ret;
  }

  setContainer(g: number): SyscallResult {
    const b = new Uint8Array(4);
    new DataView(b.buffer).setInt32(0, this.cfd, true);
    this.proc.write(FDBUF, b);
    return this.proc.ioctl(this.gfds[g], VFIO_GROUP_SET_CONTAINER, FDBUF);
  }

  /** Resets the ledger when the container's type1 state went away or was replaced. */
  private syncShadow(): void {
    if (this.iommu !== this.shadowOf) {
      this.leakedBefore += this.shadowOf?.leakedLockedVm ?? 0;
      this.diverged.clear();
      this.shadowOf = this.iommu;
      this.tracking = false;
      this.owed.clear();
      this.pins.clear();
      this.registered = false;
    }
  }

  dispose(): void {
    this.faults.disarm();
    this.proc.exit();
  }

  /** An address for a struct of `len` bytes placed at `where`. */
  private place(where: Where, data: Uint8Array): bigint {
    switch (where) {
      case "ok":
        this.proc.write(ARG, data);
        return ARG;
      case "unmapped":
        return UNMAPPED;
      case "ro":
        return RO_PAGE;
      case "none":
        return NONE_PAGE;
      case "straddle": {
        const at = SCRATCH + SCRATCH_SIZE - 8n;
        this.proc.write(at, data.subarray(0, 8));
        return at;
      }
      case "rocontent":
        this.proc.mprotect(RO_CONTENT, 0x1000, PROT_READ | PROT_WRITE);
        this.proc.write(RO_CONTENT, data);
        this.proc.mprotect(RO_CONTENT, 0x1000, PROT_READ);
        return RO_CONTENT;
    }
  }

  bitmapAddr(b: BitmapArg): bigint {
    switch (b.where) {
      case "ok":
        return BITMAPS + b.off;
      case "abs":
        return b.off;
      case "unmapped":
        return UNMAPPED;
      case "ro":
        return RO_PAGE;
      case "none":
        return NONE_PAGE;
      case "straddle":
        return ARENA + ARENA_SIZE - 8n;
      case "rocontent":
        return RO_CONTENT;
    }
  }

  /** Zeroes the writable pages of a user bitmap as the VMM would before a harvest. */
  private zeroBitmap(addr: bigint, bytes: bigint): void {
    if (bytes <= 0n || bytes > 1n << 24n) return;
    for (let a = addr; a < addr + bytes; ) {
      const next = (a / PAGE + 1n) * PAGE;
      const end = next < addr + bytes ? next : addr + bytes;
      this.proc.fill(a, end - a, 0);
      a = end;
    }
  }

  step(op: Op): Finding[] {
    this.syncShadow();
    const iommu = this.iommu;
    const before = snapshot(iommu, this.proc);
    const dmasBefore = iommu ? iommu.dmaList.toArray().map((d) => [d.iova, d.size] as const) : [];
    const dmaObjsBefore = iommu ? iommu.dmaList.toArray() : [];
    const leakedAtStart = iommu ? iommu.leakedLockedVm : 0;
    const ctx: StepCtx = { failed: false, errno: 0, out: [] };
    if (op.k === "failAlloc") {
      this.faults.arm(op.nth as number);
      return [];
    }
    if (op.k === "failPt") {
      this.faults.armPageTables(op.extra as number);
      return [];
    }
    const injected = this.faults.armed;
    try {
      exec(this, op, ctx);
    } finally {
      this.faults.disarm();
    }
    const found: Finding[] = [...ctx.out.map((m) => ({ kind: m.kind, op: op.k, message: m.message }))];
    const tag = `${injected ? " [allocation failure injected]" : ""}${this.cfg.hw ? " [hardware dirty]" : ""}`;
    const after = this.iommu;
    // A failed call leaves everything as it was, except what Linux itself leaves behind.
    if (ctx.failed && after === iommu) {
      const allow = type1FailureAllowance(op, ctx.errno);
      if (allow !== "any") {
        const was = allow === "bitmaps" ? stripBitmaps(before) : before;
        const now = snapshot(after, this.proc, allow !== "bitmaps");
        const d = firstDiff(was, now);
        if (d) found.push({ kind: "state", op: op.k, message: `failed ${op.k} (${errnoName(ctx.errno)}) changed the state: ${d}` });
      }
    }
    // Removed dmas take their owed pages with them (reported or not: the harvest checks ran in exec).
    if (after && iommu === after) {
      const live = new Set(after.dmaList.toArray().map((d) => `${d.iova}:${d.size}`));
      for (const [iova, sz] of dmasBefore) if (!live.has(`${iova}:${sz}`)) this.dropOwed(iova, iova + sz);
    }
    // Charge left behind by a removed dma is Linux's only for dmas whose pins diverged (seen before this call).
    if (iommu && iommu.leakedLockedVm !== leakedAtStart) {
      const live = new Set(iommu.dmaList.toArray());
      if (!dmaObjsBefore.some((d) => !live.has(d) && this.diverged.has(d))) found.push({ kind: "invariant", op: op.k, message: `removed dmas left ${iommu.leakedLockedVm - leakedAtStart} pages charged, none had diverged pins` });
    }
    this.syncShadow();
    // A pin outside the runs while a domain exists is charged on its own, and unpinning it
    // then uncharges nothing (do_accounting is false with a domain): Linux keeps that page
    // in locked_vm, so such a dma's charge depends on the order of calls too.
    if (this.iommu) for (const d of this.iommu.dmaList) if (pinsDiverge(d, !this.iommu.kernel.vpfnRange) || (this.iommu.domainList.length > 0 && pinsOutsideRuns(d) > 0)) this.diverged.add(d);
    const mm = this.proc.mm;
    if (mm) {
      if (mm.underflowWarnings) found.push({ kind: "invariant", op: op.k, message: `locked_vm underflow: ${mm.underflowWarnings} uncharges of more than was charged (locked_vm ${mm.lockedVm})` });
      if (mm.lockedVm < 0) found.push({ kind: "invariant", op: op.k, message: `negative locked_vm ${mm.lockedVm}` });
      if (!this.iommu && mm.lockedVm !== this.leakedBefore) found.push({ kind: "invariant", op: op.k, message: `no type1 state but locked_vm ${mm.lockedVm} (charge leaked${this.leakedBefore ? `; ${this.leakedBefore} left by diverged dmas` : ""})` });
    }
    const dmaList = this.iommu ? this.iommu.dmaList.toArray() : [];
    const bad = [...invariants(this.iommu, this.proc, { diverged: this.diverged, leakedBefore: this.leakedBefore }).filter((b) => !acceptType1Quirk(b, dmaList)), ...hwMappingInvariants(this.iommu)];
    if (bad.length) found.push({ kind: "invariant", op: op.k, message: bad.join("; ") });
    for (const f of found) {
      const nl = f.message.indexOf("\n");
      f.message = nl < 0 ? f.message + tag : f.message.slice(0, nl) + tag + f.message.slice(nl);
    }
    return found;
  }

  /** The emulated device's close: its driver unpins every page and the device is unregistered. */
  closeDevice(): void {
    const iommu = this.iommu;
    if (!iommu) return;
    for (const [p, n] of [...this.pins]) for (let i = 0; i < n; i++) iommu.unpinPages(p, 1);
    this.pins.clear();
    iommu.unregisterDevice(this.dev);
    this.registered = false;
  }

  dropOwed(lo: bigint, hi: bigint): void {
    for (const p of this.owed) if (p >= lo && p < hi) this.owed.delete(p);
  }

  /**
   * The ledger check of a successful harvest whose user bitmap starts at `base` IOVA:
   * every owed page of [lo, hi), every pinned page, and (plain IOMMU devices) every page of
   * every mapping in range must be set. Reported owed pages are retired.
   */
  checkHarvest(ctx: StepCtx, what: string, base: bigint, lo: bigint, hi: bigint, pgsize: bigint, data: bigint, plainAll: boolean, dmas: Array<readonly [bigint, bigint]>): void {
    if (pgsize <= 0n) return;
    // Read only the bytes asked about (the rest of a big bitmap may be unmapped: Linux copies out per mapping).
    const cache = new Map<bigint, number | null>();
    const bit = (p: bigint): boolean | null => {
      const i = (p - base) / pgsize;
      const at = data + i / 8n;
      if (!cache.has(at)) cache.set(at, this.proc.read(at, 1)?.[0] ?? null);
      const b = cache.get(at);
      return b === null || b === undefined ? null : ((b >> Number(i & 7n)) & 1) === 1;
    };
    const missing: bigint[] = [];
    for (const p of [...this.owed]) {
      if (p < lo || p >= hi) continue;
      if (bit(p) === false || bit(p) === null) missing.push(p);
      this.owed.delete(p);
    }
    for (const [p, n] of this.pins) if (n > 0 && p >= lo && p < hi && !bit(p)) missing.push(p);
    if (missing.length) {
      ctx.out.push({ kind: "lost-dirty", message: `${what} returned 0 but did not report ${missing.length} page(s) a device wrote or pinned while tracking: iova ${missing.slice(0, 4).map(hex).join(" ")}` });
    }
    if (plainAll) {
      for (const [iova, sz] of dmas) {
        if (iova < lo || iova + sz > hi) continue;
        for (let p = iova; p < iova + sz; p += pgsize) {
          if (!bit(p)) {
            ctx.out.push({ kind: "lost-dirty", message: `${what}: a plain IOMMU-backed device is attached but mapped page ${hex(p)} is not reported` });
            return;
          }
        }
      }
    }
  }

  /** Whether GET_BITMAP must report every mapped page (a plain IOMMU-backed group, software tracking). */
  plainAll(): boolean {
    const iommu = this.iommu;
    return !!iommu && !this.cfg.hw && iommu.domainList.length > 0 && iommu.numNonPinnedGroups > 0;
  }

  zero(addr: bigint, bytes: bigint): void {
    this.zeroBitmap(addr, bytes);
  }

  placeStruct(where: Where, data: Uint8Array): bigint {
    return this.place(where, data);
  }
}

/**
 * state.ts checks range domains; page-table domains are checked here: the first and last
 * page of every pinned run translate to the run's physical address in every domain.
 */
function hwMappingInvariants(iommu: VfioIommu | null): string[] {
  if (!iommu) return [];
  const bad: string[] = [];
  const dmas = iommu.dmaList.toArray().slice(0, 64);
  for (const vd of iommu.domainList) {
    if (!(vd.domain instanceof HwIommuDomain)) continue;
    for (const d of dmas) {
      for (const r of d.runs) {
        if (r.npages <= 0) continue;
        for (const off of [0n, BigInt(r.npages - 1) * PAGE]) {
          const iova = d.iova + r.offset + off;
          const pa = vd.domain.hw.iovaToPhys(Number(iova));
          if (BigInt(pa) !== r.phys + off) {
            bad.push(`page table: iova ${hex(iova)} -> ${pa < 0 ? "unmapped" : hex(BigInt(pa))}, pinned run says ${hex(r.phys + off)}`);
            return bad;
          }
        }
      }
    }
  }
  return bad;
}

/** A snapshot as `snapshot(.., false)` would have taken it (bitmap contents left out). */
function stripBitmaps(s: unknown): unknown {
  const o = s as { dmas?: Array<{ bitmap: unknown }> };
  if (!o || !Array.isArray(o.dmas)) return s;
  return { ...o, dmas: o.dmas.map((d) => ({ ...d, bitmap: d.bitmap === null ? null : "present" })) };
}

interface StepCtx {
  failed: boolean;
  errno: number;
  out: Array<{ kind: Finding["kind"]; message: string }>;
}

function note(ctx: StepCtx, r: { ret: number; errno: number }): number {
  if (r.ret < 0) {
    ctx.failed = true;
    ctx.errno = r.errno;
  }
  return r.ret;
}

function noteK(ctx: StepCtx, r: number): number {
  if (r < 0) {
    ctx.failed = true;
    ctx.errno = -r;
  }
  return r;
}

const big = (v: unknown): bigint => v as bigint;

/** Runs one op against the world. */
function exec(s: Type1Session, op: Op, ctx: StepCtx): void {
  const p = s.proc;
  switch (op.k) {
    case "mmap":
      note(ctx, p.mmap(ARENA + big(op.off), big(op.len), op.prot as number));
      return;
    case "munmap":
      note(ctx, p.munmap(ARENA + big(op.off), big(op.len)));
      return;
    case "mprotect":
      note(ctx, p.mprotect(ARENA + big(op.off), big(op.len), op.prot as number));
      return;
    case "fill":
      p.fill(ARENA + big(op.off), big(op.len), op.byte as number);
      return;
    case "memlock":
      note(ctx, p.setrlimitMemlock(big(op.bytes), big(op.bytes)));
      return;
    case "cap":
      p.setCapIpcLock(op.on as boolean);
      return;
    case "ext":
      note(ctx, p.ioctl(s.cfd, VFIO_CHECK_EXTENSION, big(op.id)));
      return;
    case "info": {
      const b = new Uint8Array(24);
      new DataView(b.buffer).setUint32(0, op.argsz as number, true);
      note(ctx, p.ioctl(s.cfd, VFIO_IOMMU_GET_INFO, s.placeStruct(op.at as Where, b)));
      return;
    }
    case "map": {
      const b = new Uint8Array(DmaMap.SIZE);
      const dv = new DataView(b.buffer);
      dv.setUint32(DmaMap.argsz, op.argsz as number, true);
      dv.setUint32(DmaMap.flags, op.flags as number, true);
      dv.setBigUint64(DmaMap.vaddr, big(op.vaddr), true);
      dv.setBigUint64(DmaMap.iova, big(op.iova), true);
      dv.setBigUint64(DmaMap.size, big(op.size), true);
      note(ctx, p.ioctl(s.cfd, VFIO_IOMMU_MAP_DMA, s.placeStruct(op.at as Where, b)));
      return;
    }
    case "unmap": {
      const bm = op.bm as BitmapArg;
      const data = s.bitmapAddr(bm);
      const b = new Uint8Array(64);
      const dv = new DataView(b.buffer);
      dv.setUint32(DmaUnmap.argsz, op.argsz as number, true);
      dv.setUint32(DmaUnmap.flags, op.flags as number, true);
      dv.setBigUint64(DmaUnmap.iova, big(op.iova), true);
      dv.setBigUint64(DmaUnmap.size, big(op.size), true);
      putVfioBitmap(dv, DmaUnmap.data, bm, data);
      const withBitmap = ((op.flags as number) & VFIO_DMA_UNMAP_FLAG_GET_DIRTY_BITMAP) !== 0;
      if (withBitmap) s.zero(data, bm.bsize);
      const iommu = s.iommu;
      const dmas = iommu ? iommu.dmaList.toArray().map((d) => [d.iova, d.size] as const) : [];
      const plainAll = s.plainAll();
      const tracking = s.tracking;
      const r = note(ctx, p.ioctl(s.cfd, VFIO_IOMMU_UNMAP_DMA, s.placeStruct(op.at as Where, b)));
      if (r === 0 && withBitmap && tracking && iommu && s.iommu === iommu) {
        const live = new Set(iommu.dmaList.toArray().map((d) => `${d.iova}:${d.size}`));
        const gone = dmas.filter(([i, z]) => !live.has(`${i}:${z}`));
        for (const [i, z] of gone) s.checkHarvest(ctx, "UNMAP_DMA with GET_DIRTY_BITMAP", big(op.iova), i, i + z, bm.pgsize, data, plainAll, gone);
      }
      return;
    }
    case "dirty": {
      const bm = op.bm as BitmapArg;
      const data = s.bitmapAddr(bm);
      const b = new Uint8Array(128);
      const dv = new DataView(b.buffer);
      dv.setUint32(DirtyBitmap.argsz, op.argsz as number, true);
      dv.setUint32(DirtyBitmap.flags, op.flags as number, true);
      const g = DirtyBitmap.data;
      dv.setBigUint64(g + DirtyBitmapGet.iova, big(op.iova), true);
      dv.setBigUint64(g + DirtyBitmapGet.size, big(op.size), true);
      putVfioBitmap(dv, g + DirtyBitmapGet.bitmap, bm, data);
      const fl = op.flags as number;
      const isGet = fl === 4;
      if (isGet) s.zero(data, bm.bsize);
      const iommu = s.iommu;
      const plainAll = s.plainAll();
      const dmas = iommu ? iommu.dmaList.toArray().map((d) => [d.iova, d.size] as const) : [];
      const r = note(ctx, p.ioctl(s.cfd, VFIO_IOMMU_DIRTY_PAGES, s.placeStruct(op.at as Where, b)));
      if (r === 0 && fl === 1) s.tracking = true;
      if (r === 0 && fl === 2) {
        s.tracking = false;
        s.owed.clear();
      }
      if (isGet && s.tracking) {
        const lo = big(op.iova);
        const hi = u64(lo + big(op.size));
        if (r === 0 && hi > lo) s.checkHarvest(ctx, "DIRTY_PAGES GET_BITMAP", lo, lo, hi, bm.pgsize, data, plainAll, dmas);
        else if (r < 0 && ctx.errno === Errno.EFAULT && hi > lo) s.dropOwed(lo, hi); // Linux: earlier mappings were reported and cleared
      }
      return;
    }
    case "attach":
      note(ctx, s.setContainer(op.g as number));
      return;
    case "detach":
      // VFIO refuses to take a group out of its container while its devices are open, so
      // the emulated group's device is closed first: its driver unpins everything.
      if (op.g === EMULATED_GROUP && s.container?.groups.some((gf) => gf.group === s.platform.groups[EMULATED_GROUP])) s.closeDevice();
      note(ctx, p.ioctl(s.gfds[op.g as number], VFIO_GROUP_UNSET_CONTAINER, 0n));
      return;
    case "setIommu":
      note(ctx, p.ioctl(s.cfd, VFIO_SET_IOMMU, BigInt(op.type as number)));
      return;
    case "closeContainer": {
      const c = s.container;
      const attached = c ? c.groups.length : 0;
      const iommu = s.iommu;
      const was = snapshot(iommu, p);
      note(ctx, p.close(s.cfd));
      // Linux: each attached group holds a reference on the container; its mappings and charge stay.
      if (attached > 0 && iommu) {
        const now = snapshot(c!.iommu, p);
        if (!isEqual(was, now)) ctx.out.push({ kind: "post", message: `closing the container fd with ${attached} group(s) attached tore the container down (Linux keeps it): ${firstDiff(was, now)}` });
      }
      s.cfd = -1;
      return;
    }
    case "openContainer":
      if (s.cfd >= 0) return; // only after closeContainer
      // A closed container that groups still hold lives on with its charge (Linux: the
      // group's reference); the checks follow one container, so no second one is opened.
      if (s.container && s.container.groups.length > 0) return;
      noteK(ctx, s.openContainer());
      return;
    case "register": {
      const iommu = s.iommu;
      if (!iommu || s.registered) return; // a device registers once (vfio_register_emulated_iommu_dev)
      if (noteK(ctx, iommu.registerDevice(s.dev)) === 0) s.registered = true;
      return;
    }
    case "pin": {
      const iommu = s.iommu;
      if (!iommu) return;
      const npage = op.npage as number;
      const r = iommu.pinPages(s.dev, big(op.iova), npage, op.prot as number);
      if (noteK(ctx, r.ret) > 0) {
        for (let i = 0; i < npage; i++) {
          const a = u64(big(op.iova) + BigInt(i) * PAGE);
          s.pins.set(a, (s.pins.get(a) ?? 0) + 1);
          if (s.tracking) s.owed.add(a);
        }
      }
      return;
    }
    case "unpin": {
      const iommu = s.iommu;
      if (!iommu) return;
      const n = iommu.unpinPages(big(op.iova), op.npage as number);
      for (let i = 0; i < n; i++) {
        const a = u64(big(op.iova) + BigInt(i) * PAGE);
        const c = s.pins.get(a);
        if (c === undefined) continue;
        if (c <= 1) s.pins.delete(a);
        else s.pins.set(a, c - 1);
      }
      return;
    }
    case "rw": {
      const iommu = s.iommu;
      if (!iommu) return;
      const len = op.len as number;
      const data = new Uint8Array(len).fill(0xa5);
      const r = noteK(ctx, iommu.dmaRw(p, big(op.iova), data, op.write as boolean));
      if (r === 0 && op.write && s.tracking && len > 0) {
        for (let a = (big(op.iova) / PAGE) * PAGE; a < big(op.iova) + BigInt(len); a += PAGE) s.owed.add(a);
      }
      return;
    }
    case "hwWrite": {
      const iommu = s.iommu;
      if (!iommu) return;
      const g = s.platform.groups[op.g as number];
      const vd = iommu.domainList.find((d) => d.groups.some((x) => x.group === g));
      if (!vd || !(vd.domain instanceof HwIommuDomain)) return;
      let dev = s.dma.get(op.g as number);
      if (!dev) s.dma.set(op.g as number, (dev = new DmaDevice(`grp${g.id}`)));
      if (dev.domain !== vd.domain.hw) dev.attach(vd.domain.hw);
      const start = big(op.iova);
      for (let i = 0n; i < big(op.npages); i++) {
        const a = start + i * PAGE;
        if (a > BigInt(Number.MAX_SAFE_INTEGER)) break;
        if (dev.write(Number(a), 8) === DMA_OK && s.tracking) s.owed.add(a);
      }
      return;
    }
    default:
      throw new Error(`fuzz type1: unknown op ${op.k}`);
  }
}

/** A struct vfio_bitmap at `off`: the bitmap argument of UNMAP_DMA and GET_BITMAP. */
function putVfioBitmap(dv: DataView, off: number, bm: BitmapArg, data: bigint): void {
  dv.setBigUint64(off + VfioBitmap.pgsize, bm.pgsize, true);
  dv.setBigUint64(off + VfioBitmap.size, bm.bsize, true);
  dv.setBigUint64(off + VfioBitmap.data, data, true);
}

// ------------------------------------------------------------------ generation

function where(rng: Rng): Where {
  return weighted(rng, [
    [30, () => "ok" as Where],
    [1, () => "unmapped" as Where],
    [1, () => "ro" as Where],
    [1, () => "none" as Where],
    [1, () => "straddle" as Where],
    [1, () => "rocontent" as Where],
  ]);
}

/** An existing mapping (from the live model, to aim at), or null. */
function someDma(rng: Rng, s: Type1Session): { iova: bigint; size: bigint } | null {
  const l = s.iommu?.dmaList;
  if (!l || l.length === 0) return null;
  const d = l.at(rng.int(l.length))!;
  return { iova: d.iova, size: d.size };
}

function iova(rng: Rng, s: Type1Session): bigint {
  const d = someDma(rng, s);
  return weighted(rng, [
    [6, () => BigInt(rng.range(0, 1023)) * PAGE * 16n],
    [4, () => (d ? near(rng, rng.chance(0.5) ? d.iova : d.iova + d.size) : 0n)],
    [1, () => pick(rng, EDGES)],
    [1, () => pick(rng, [0xfee00000n, 0xfedff000n, 0x8000000n, 0x7ffffff000n, 0xfef00000n])],
    [1, () => anyU64(rng)],
  ]);
}

function vaddr(rng: Rng): bigint {
  return weighted(rng, [
    [10, () => ARENA + BigInt(rng.range(0, 2047)) * PAGE * 4n],
    [2, () => ARENA + ARENA_SIZE - BigInt(rng.range(0, 16)) * PAGE], // straddles the VMA end
    [1, () => ARENA + BigInt(rng.range(0, 0xffffff))],
    [1, () => pick(rng, [0n, UNMAPPED, RO_PAGE, NONE_PAGE, 0x7fff_ffff_f000n, U64 - PAGE + 1n])],
  ]);
}

function bitmapFor(rng: Rng, lo: bigint, sz: bigint): BitmapArg {
  const pgsize = weighted(rng, [
    [20, () => PAGE],
    [1, () => pick(rng, [0n, 1n, 2048n, 8192n, 1n << 21n, U64])],
  ]);
  const nbits = pgsize > 0n ? sz / pgsize : 0n;
  const need = ((nbits + 63n) / 64n) * 8n;
  const bsize = weighted(rng, [
    [16, () => need],
    [1, () => (need > 8n ? need - 8n : 0n)],
    [1, () => need + 8n],
    [1, () => pick(rng, [0n, 1n, 7n, 1n << 28n, (1n << 28n) + 1n, U64])],
  ]);
  const w = weighted(rng, [
    [24, () => "ok" as const],
    [1, () => "abs" as const],
    [1, () => "unmapped" as const],
    [1, () => "ro" as const],
    [1, () => "none" as const],
    [1, () => "straddle" as const],
  ]);
  void lo;
  const off = w === "abs" ? pick(rng, [0n, ARENA + 0x7ff000n, BITMAPS + 1n, U64 - 7n]) : BigInt(rng.range(0, 15)) * PAGE + (rng.chance(0.1) ? BigInt(rng.range(1, 4095)) : 0n);
  return { pgsize, bsize, where: w, off };
}

function genType1(rng: Rng, s: Type1Session): Op {
  const d = someDma(rng, s);
  const tracking = s.iommu?.dirtyPageTracking ?? false;
  return weighted<Op>(rng, [
    [14, () => ({ k: "map", at: where(rng), argsz: argsz(rng, 32), flags: flags(rng, [3, 3, 1, 2, 4, 7, 0]), vaddr: vaddr(rng), iova: iova(rng, s), size: size(rng, 96) })],
    [5, () => {
      const all = rng.chance(0.05);
      const getBm = tracking ? rng.chance(0.5) : rng.chance(0.05);
      const fl = flags(rng, [all ? 2 : getBm ? 1 : 0, 4, 0]);
      const lo = all ? 0n : d && rng.chance(0.8) ? d.iova : iova(rng, s);
      const sz = all ? 0n : d && rng.chance(0.7) ? d.size * BigInt(rng.range(1, 2)) : size(rng);
      return { k: "unmap", at: where(rng), argsz: argsz(rng, getBm ? 48 : 24), flags: fl, iova: lo, size: sz, bm: bitmapFor(rng, lo, sz) };
    }],
    [3, () => ({ k: "dirty", at: where(rng), argsz: argsz(rng, 48), flags: flags(rng, [1, 1, 2, 4]), iova: 0n, size: 0n, bm: bitmapFor(rng, 0n, 0n) })],
    [12, () => {
      // GET_BITMAP, aimed at whole mappings mostly.
      const lo = d && rng.chance(0.85) ? d.iova : iova(rng, s);
      const sz = d && rng.chance(0.8) ? d.size : size(rng);
      return { k: "dirty", at: where(rng), argsz: argsz(rng, 48), flags: rng.chance(0.95) ? 4 : flags(rng, [5, 6, 7]), iova: lo, size: sz, bm: bitmapFor(rng, lo, sz) };
    }],
    [2, () => ({ k: "info", at: where(rng), argsz: argsz(rng, pick(rng, [16, 24, 116, 120])) })],
    [1, () => ({ k: "ext", id: BigInt(rng.range(0, 12)) })],
    [3, () => ({ k: "fill", off: BigInt(rng.range(0, 4095)) * PAGE * 4n, len: pages(rng, 256) * PAGE, byte: rng.range(1, 255) })],
    [2, () => ({ k: "mprotect", off: BigInt(rng.range(0, 1023)) * PAGE * 16n, len: pages(rng) * PAGE, prot: pick(rng, [PROT_NONE, PROT_READ, PROT_READ | PROT_WRITE]) })],
    [1, () => ({ k: "munmap", off: BigInt(rng.range(0, 1023)) * PAGE * 16n, len: pages(rng) * PAGE })],
    [1, () => ({ k: "mmap", off: BigInt(rng.range(0, 1023)) * PAGE * 16n, len: pages(rng) * PAGE, prot: PROT_READ | PROT_WRITE })],
    [2, () => ({ k: "memlock", bytes: pick(rng, [0n, PAGE, 1n << 20n, 16n << 20n, U64, BigInt(rng.range(0, 4096)) * PAGE]) })],
    [2, () => ({ k: "cap", on: rng.chance(0.5) })],
    [2, () => ({ k: "attach", g: rng.int(3) })],
    [1, () => ({ k: "detach", g: rng.int(3) })],
    [1, () => ({ k: "setIommu", type: pick(rng, [3, 3, 1, 6, 2, 0]) })],
    [0.1, () => ({ k: "closeContainer" })],
    [0.3, () => ({ k: "openContainer" })],
    [1, () => ({ k: "register" })],
    [5, () => ({ k: "pin", iova: d && rng.chance(0.85) ? d.iova + BigInt(rng.int(Number(d.size / PAGE) || 1)) * PAGE : iova(rng, s), npage: weighted(rng, [[8, () => rng.range(1, 8)], [1, () => pick(rng, [0, 511, 512, 513, -1])]]), prot: pick(rng, [1, 2, 3, 3]) })],
    [3, () => {
      const pinned = [...s.pins.keys()];
      const at = pinned.length && rng.chance(0.8) ? pick(rng, pinned) : iova(rng, s);
      return { k: "unpin", iova: at, npage: rng.range(1, 4) };
    }],
    [5, () => ({ k: "rw", iova: d && rng.chance(0.9) ? d.iova + BigInt(rng.int(Number(d.size) || 1)) : iova(rng, s), len: weighted(rng, [[6, () => rng.range(1, 64)], [2, () => rng.range(1, 3 * 4096)], [1, () => 0]]), write: rng.chance(0.75) })],
    [s.cfg.hw ? 8 : 0, () => ({ k: "hwWrite", g: rng.int(2), iova: d && rng.chance(0.9) ? d.iova + BigInt(rng.int(Number(d.size / PAGE) || 1)) * PAGE : iova(rng, s), npages: BigInt(rng.range(1, 4)) })],
    [1, () => ({ k: "failAlloc", nth: rng.range(1, 4) })],
    [s.cfg.hw ? 0.5 : 0, () => ({ k: "failPt", extra: rng.range(0, 3) })],
  ]);
}

/** The type1 target. */
export const type1Target: Target<Type1Config> = {
  name: "type1",
  config(rng) {
    const hw = rng.chance(0.4) ? pick(rng, ["amd-v1", "intel-ss", "arm-lpae-s1"] as const) : null;
    return {
      platform: rng.chance(0.8) ? "vtd" : "smmu",
      hw,
      profile: rng.chance(0.85) ? "linux-6.1" : "mainline",
      bitmapCopy: pick(rng, ["simd", "simd", "word", "byte"] as const),
      setup: weighted(rng, [[6, () => "standard" as const], [3, () => "emulated" as const], [1, () => "none" as const]]),
      prefill: pick(rng, [0, 2 << 20, 8 << 20, 32 << 20]),
      high: rng.chance(avoidKnownHang("F2") ? 0.01 : 0.1),
    };
  },
  open: (cfg) => new Type1Session(cfg),
  gen: (rng, s) => genType1(rng, s as Type1Session),
  extraReproducer: (cfg, ops) => type1Trace(cfg, ops),
};

const arenaRel = (a: bigint): string => (a >= ARENA && a < ARENA + ARENA_SIZE ? `+0x${(a - ARENA).toString(16)}` : hex(a));

/**
 * The calls as a vfio-trace script, when every one is expressible there (the oracle's
 * world: VT-d, group 0, TYPE1v2, structs at good addresses); else null.
 */
export function type1Trace(cfg: Type1Config, ops: Op[]): string | null {
  if (cfg.platform !== "vtd" || cfg.hw || cfg.setup !== "standard" || cfg.profile !== "linux-6.1" || cfg.bitmapCopy === "byte") return null;
  const lines = ["case fuzz"];
  if (cfg.prefill) lines.push(`fill addr=+0 size=${hex(BigInt(cfg.prefill))} byte=0x5a`);
  const bmAddr = (b: BitmapArg): string | null => (b.where === "ok" ? arenaRel(BITMAPS + b.off) : b.where === "abs" ? arenaRel(b.off) : b.where === "straddle" ? arenaRel(ARENA + ARENA_SIZE - 8n) : null);
  for (const op of ops) {
    if ("at" in op && op.at !== "ok") return null;
    switch (op.k) {
      case "map":
        lines.push(`map argsz=${op.argsz} flags=${op.flags} vaddr=${arenaRel(big(op.vaddr))} iova=${hex(big(op.iova))} size=${hex(big(op.size))}`);
        break;
      case "unmap":
      case "dirty": {
        const bm = op.bm as BitmapArg;
        const a = bmAddr(bm);
        if (a === null) return null;
        lines.push(`${op.k} argsz=${op.argsz} flags=${op.flags} iova=${hex(big(op.iova))} size=${hex(big(op.size))} pgsize=${hex(bm.pgsize)} bitmap_size=${hex(bm.bsize)} data=${a} show=${bm.bsize > 64n ? 64 : bm.bsize}`);
        break;
      }
      case "info":
        lines.push(`info argsz=${op.argsz}`);
        break;
      case "ext":
        lines.push(`ext id=${op.id}`);
        break;
      case "memlock":
        lines.push(`memlock bytes=${big(op.bytes) === U64 ? "unlimited" : hex(big(op.bytes))}`);
        break;
      case "cap":
        lines.push(`cap_ipc_lock on=${op.on ? 1 : 0}`);
        break;
      case "fill":
        lines.push(`fill addr=+${hex(big(op.off))} size=${hex(big(op.len))} byte=${op.byte}`);
        break;
      case "mprotect":
        lines.push(`mprotect addr=+${hex(big(op.off))} size=${hex(big(op.len))} prot=${op.prot === 0 ? "none" : op.prot === 1 ? "r" : "rw"}`);
        break;
      case "munmap":
        lines.push(`munmap addr=+${hex(big(op.off))} size=${hex(big(op.len))}`);
        break;
      default:
        return null;
    }
  }
  lines.push("locked");
  return `# As a vfio-trace script (run it with the fuzzer's checks: npm run fuzz -- --target trace --trace-file repro.trace):\n${lines.join("\n")}\n`;
}
