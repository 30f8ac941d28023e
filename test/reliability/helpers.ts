/**
 * Worlds for the reliability tests: a simulated process with type1 or iommufd open, each
 * call to the kernel a `Step`, and a snapshot of every piece of state a failed call must
 * leave as it was. `sweepFailNth` is the kernel's fail_nth loop over a scenario
 * (deliverable 3 of issue 11).
 */
import { WasmCore } from "../../src/wasm/core";
import type { AllocKind } from "../../src/wasm/fault";
import { Process } from "../../src/process/process";
import { VFIO_GROUP_SET_CONTAINER, VFIO_SET_IOMMU, VFIO_TYPE1v2_IOMMU, VFIO_IOMMU_MAP_DMA, VFIO_IOMMU_UNMAP_DMA, VFIO_IOMMU_DIRTY_PAGES } from "../../src/uapi/vfio";
import { installVfio, VfioContainer } from "../../src/type1/container";
import type { VfioIommu } from "../../src/type1/vfio-iommu";
import type { Type1Options } from "../../src/type1/options";
import type { Platform } from "../../src/iommu/platform";
import { HwIommuDomain } from "../../src/iommu/hw/iommu-domain";
import { installIommufd, IommufdCtx } from "../../src/iommufd";
import * as U from "../../src/iommufd/uapi";
import { Bitmap } from "../../src/bitmap";
import { DirtyTarget } from "../../src/iommu/pgtable";
import type { PgtableDomain } from "../../src/iommu/hw/domain";

/** Grows linear memory past 2 GiB so that every later block lies above it. */
export function pushPast2GiB(core: WasmCore): number[] {
  const blocks = [0, 1, 2, 3].map(() => core.alloc(600 * 2 ** 20, false));
  for (const b of blocks) expect(b).toBeGreaterThan(0);
  expect(core.memoryBytes).toBeGreaterThan(2 ** 31);
  return blocks;
}

/** One call into the kernel: returns its result (>= 0) or -errno. */
export interface Step {
  name: string;
  run(): number;
  /**
   * Linux answers 0 even when this call fails partway: iommufd's harvest drops pin and walk
   * errors (iommu_read_and_clear_dirty ignores iova_bitmap_for_each's result). A fault may
   * then give 0 with the state exactly as before the call.
   */
  dropsErrors?: boolean;
}

/** A scenario's world: its process, its calls in order, and what state means. */
export interface World {
  core: WasmCore;
  sys: Sys;
  steps: Step[];
  /** Everything a failed call must leave unchanged (JSON-comparable). */
  snapshot(): unknown;
}

const hex = (b: Uint8Array): string => Buffer.from(b).toString("hex");

/**
 * A process whose kernel calls can be guarded: `kernel(fn)` runs fn with the fault
 * injector in whatever state the sweep chose, while the user-space part of a call
 * (writing its argument struct) always runs disarmed.
 */
export class Sys {
  readonly proc: Process;
  /** Argument structs live here (written once, so their frames exist before any call). */
  readonly args: bigint;
  guard: <T>(fn: () => T) => T = (fn) => fn();
  private readonly blocks0: number;
  private readonly pages0: number;

  constructor(readonly core: WasmCore) {
    this.blocks0 = core.liveBlocks;
    this.pages0 = core.x.ptPagesInUse();
    this.proc = new Process({ core });
    this.args = BigInt(this.proc.mmap(undefined, 0x10000).ret);
    this.proc.fill(this.args, 0x10000, 0xaa);
  }

  /** Heap blocks the kernel side holds (user frames excluded), counted from this world's start. */
  kernelBlocks(): number {
    return this.core.liveBlocks - this.blocks0 - (this.proc.mm?.memory.frameCount ?? 0);
  }

  /** Table pages in use, counted from this world's start. */
  tablePages(): number {
    return this.core.x.ptPagesInUse() - this.pages0;
  }

  /** Runs a kernel-side function under the sweep's guard. */
  kernel<T>(fn: () => T): T {
    return this.guard(fn);
  }

  /** ioctl(fd, cmd, &struct): the struct is written first, outside the guard; -errno or ret. */
  ioctl(fd: number, cmd: number, bytes: Uint8Array): number {
    expect(this.proc.write(this.args, bytes).errno).toBe(0);
    const r = this.kernel(() => this.proc.ioctl(fd, cmd, this.args));
    return r.ret < 0 ? -r.errno : r.ret;
  }

  /** A field of the argument struct after the call. */
  argU32(off: number): number {
    return new DataView(this.proc.read(this.args + BigInt(off), 4)!.buffer).getUint32(0, true);
  }

  /** Bytes of user memory (zeros where never written). */
  user(addr: bigint, len: number): string {
    return hex(this.proc.mm!.memory.readRaw(Number(addr), len));
  }
}

/** Builds a struct: `size` bytes, u32 argsz/size at 0, then fields. */
export function struct(size: number, fields: Array<[number, number | bigint, 4 | 8]>, sizeWord = true): Uint8Array {
  const b = new Uint8Array(size);
  const dv = new DataView(b.buffer);
  if (sizeWord) dv.setUint32(0, size, true);
  for (const [off, v, w] of fields) {
    if (w === 4) dv.setUint32(off, Number(v), true);
    else dv.setBigUint64(off, BigInt(v), true);
  }
  return b;
}

// ------------------------------------------------------------------ type1

/** A type1 container in a simulated process (VFIO type1v2 on `platform`). */
export class Type1World {
  readonly sys: Sys;
  readonly container: number;
  /** Group fds by group id. */
  readonly groups = new Map<number, number>();
  readonly guest: bigint;
  /** Bitmaps are harvested here: never written before the first harvest (frames on demand). */
  readonly bitmaps: bigint;

  constructor(readonly core: WasmCore, readonly platform: Platform, opts: Partial<Type1Options> = {}) {
    this.sys = new Sys(core);
    const proc = this.sys.proc;
    installVfio(proc, platform, opts);
    this.container = proc.open("/dev/vfio/vfio").ret;
    for (const g of platform.groups) this.groups.set(g.id, proc.open(`/dev/vfio/${g.id}`).ret);
    this.guest = BigInt(proc.mmap(undefined, 4 << 20).ret);
    proc.fill(this.guest, 4 << 20, 0x5a); // real pages: pinning charges them
    this.bitmaps = BigInt(proc.mmap(undefined, 0x40000).ret);
  }

  get proc(): Process {
    return this.sys.proc;
  }

  get iommu(): VfioIommu {
    return (this.proc.fdget(this.container) as VfioContainer).iommu!;
  }

  setContainer(groupId: number): number {
    const b = new Uint8Array(4);
    new DataView(b.buffer).setInt32(0, this.container, true);
    return this.sys.ioctl(this.groups.get(groupId)!, VFIO_GROUP_SET_CONTAINER, b);
  }

  setIommu(): number {
    return this.sys.kernel(() => {
      const r = this.proc.ioctl(this.container, VFIO_SET_IOMMU, BigInt(VFIO_TYPE1v2_IOMMU));
      return r.ret < 0 ? -r.errno : r.ret;
    });
  }

  map(iova: bigint, guestOff: bigint, size: bigint): number {
    return this.sys.ioctl(this.container, VFIO_IOMMU_MAP_DMA, struct(32, [[4, 3, 4], [8, this.guest + guestOff, 8], [16, iova, 8], [24, size, 8]]));
  }

  unmap(iova: bigint, size: bigint, bitmapAt?: bigint): number {
    if (bitmapAt === undefined) return this.sys.ioctl(this.container, VFIO_IOMMU_UNMAP_DMA, struct(24, [[8, iova, 8], [16, size, 8]]));
    const bsize = ((size / 4096n + 63n) / 64n) * 8n;
    return this.sys.ioctl(this.container, VFIO_IOMMU_UNMAP_DMA, struct(48, [[4, 1, 4], [8, iova, 8], [16, size, 8], [24, 4096n, 8], [32, bsize, 8], [40, bitmapAt, 8]]));
  }

  dirty(flags: number): number {
    return this.sys.ioctl(this.container, VFIO_IOMMU_DIRTY_PAGES, struct(8, [[4, flags, 4]]));
  }

  get(iova: bigint, size: bigint, bitmapAt: bigint): number {
    const bsize = ((size / 4096n + 63n) / 64n) * 8n;
    return this.sys.ioctl(this.container, VFIO_IOMMU_DIRTY_PAGES, struct(48, [[4, 4, 4], [8, iova, 8], [16, size, 8], [24, 4096n, 8], [32, bsize, 8], [40, bitmapAt, 8]]));
  }

  snapshot(): unknown {
    const fd = this.proc.fdget(this.container) as VfioContainer;
    const iommu = fd.iommu;
    const mm = this.proc.mm!;
    void mm;
    const state: Record<string, unknown> = {
      lockedVm: mm.lockedVm,
      kernelBlocks: this.sys.kernelBlocks(),
      tablePages: this.sys.tablePages(),
      bitmaps: this.sys.user(this.bitmaps, 0x40000),
      containerGroups: fd.groups.length,
    };
    if (!iommu) return state;
    state.iommu = {
      tracking: iommu.dirtyPageTracking,
      dmaAvail: iommu.dmaAvail,
      numNonPinnedGroups: iommu.numNonPinnedGroups,
      pgsizeBitmap: iommu.pgsizeBitmap.toString(16),
      iovaList: iommu.iovaList.map((r) => `${r.start.toString(16)}-${r.end.toString(16)}`),
      emulatedGroups: iommu.emulatedGroups.map((g) => [g.group.id, g.pinnedPageDirtyScope]),
      dmas: iommu.dmaList.toArray().map((d) => ({
        iova: d.iova.toString(16),
        size: d.size.toString(16),
        mapped: d.iommuMapped,
        lockedVm: d.lockedVm,
        runs: d.runs.map((r) => `${r.offset.toString(16)}:${r.phys.toString(16)}x${r.npages}${r.reserved ? "z" : ""}`),
        pfns: [...d.pfnList.values()].map((p) => `${p.iova.toString(16)}x${p.refCount}`),
        bitmap: d.bitmap ? hex(this.core.u8.slice(d.bitmap.ptr, d.bitmap.ptr + d.bitmap.bytes)) : null,
      })),
      domains: iommu.domainList.map((vd) => ({
        groups: vd.groups.map((g) => [g.group.id, g.pinnedPageDirtyScope]),
        mappings: iommu.dmaList.toArray().flatMap((d) => d.runs.map((r) => String(vd.domain.iovaToPhys(d.iova + r.offset)))),
        hw: vd.domain instanceof HwIommuDomain ? hwDirtyState(vd.domain.hw, iommu.dmaList.toArray().map((d) => [Number(d.iova), Number(d.size)])) : null,
      })),
    };
    return state;
  }
}

/** A page-table domain's tracking flag and the dirty pages it holds (NO_CLEAR, no side effect). */
function hwDirtyState(dom: PgtableDomain, ranges: Array<[number, number]>): unknown {
  const core = dom.core;
  const out: string[] = [];
  const g = dom.newGather()!;
  const t = DirtyTarget.create(core)!;
  for (const [iova, size] of ranges) {
    const bm = Bitmap.create(core, size / 4096)!;
    t.setBitmap(bm, iova, 4096);
    dom.table.readAndClearDirty(iova, size, 1, t, g);
    out.push(`${iova.toString(16)}:${[...bm.setBits()].join(",")}`);
    bm.dispose();
  }
  g.dispose();
  t.dispose();
  return { tracking: dom.dirtyTracking, dirty: out, tables: dom.table.tablePages };
}

// ------------------------------------------------------------------ iommufd

/** /dev/iommu opened in a simulated process. */
export class IommufdWorld {
  readonly sys: Sys;
  readonly fd: number;
  readonly guest: bigint;
  readonly bitmaps: bigint;

  constructor(readonly core: WasmCore) {
    this.sys = new Sys(core);
    installIommufd(this.sys.proc);
    this.fd = this.sys.proc.open("/dev/iommu").ret;
    const r = this.sys.proc.mmap(undefined, 6 << 20).ret;
    this.guest = BigInt(Math.ceil(r / (2 << 20)) * (2 << 20));
    this.bitmaps = BigInt(this.sys.proc.mmap(undefined, 0x40000).ret);
  }

  get proc(): Process {
    return this.sys.proc;
  }

  get ctx(): IommufdCtx {
    return this.proc.fdget(this.fd) as IommufdCtx;
  }

  /** ioctl; on success returns the u32 at `outOff` of the struct when given. */
  private call(cmd: number, bytes: Uint8Array, outOff?: number): number {
    const r = this.sys.ioctl(this.fd, cmd, bytes);
    return r < 0 || outOff === undefined ? r : this.sys.argU32(outOff);
  }

  ioasAlloc(): number {
    return this.call(U.IOMMU_IOAS_ALLOC, struct(12, []), 8);
  }

  map(ioas: number, guestOff: bigint, length: bigint, iova: bigint): number {
    const flags = U.IOMMU_IOAS_MAP_FIXED_IOVA | U.IOMMU_IOAS_MAP_READABLE | U.IOMMU_IOAS_MAP_WRITEABLE;
    return this.call(U.IOMMU_IOAS_MAP, struct(40, [[4, flags, 4], [8, ioas, 4], [16, this.guest + guestOff, 8], [24, length, 8], [32, iova, 8]]));
  }

  unmap(ioas: number, iova: bigint, length: bigint): number {
    return this.call(U.IOMMU_IOAS_UNMAP, struct(24, [[4, ioas, 4], [8, iova, 8], [16, length, 8]]));
  }

  /** MOCK_DOMAIN_FLAGS on `pt`: returns the device id (idev). */
  mockDomain(pt: number, flags = 0): number {
    return this.call(U.IOMMU_TEST_CMD, struct(72, [[4, U.IOMMU_TEST_OP_MOCK_DOMAIN_FLAGS, 4], [8, pt, 4], [28, flags, 4]]), 24);
  }

  hwptAlloc(idev: number, ioas: number, flags = U.IOMMU_HWPT_ALLOC_DIRTY_TRACKING): number {
    return this.call(U.IOMMU_HWPT_ALLOC, struct(40, [[4, flags, 4], [8, idev, 4], [12, ioas, 4]]), 16);
  }

  track(hwpt: number, on: boolean): number {
    return this.call(U.IOMMU_HWPT_SET_DIRTY_TRACKING, struct(16, [[4, on ? 1 : 0, 4], [8, hwpt, 4]]));
  }

  /** IOMMU_TEST_OP_DIRTY: marks pages (bit i = iova + i*pageSize) dirty as device writes would. */
  setDirty(hwpt: number, iova: bigint, length: bigint, pageSize: bigint, bitsAt: bigint): number {
    return this.call(U.IOMMU_TEST_CMD, struct(72, [[4, U.IOMMU_TEST_OP_DIRTY, 4], [8, hwpt, 4], [24, iova, 8], [32, length, 8], [40, pageSize, 8], [48, bitsAt, 8]]), 56);
  }

  get(hwpt: number, iova: bigint, length: bigint, pageSize: bigint, data: bigint, flags = 0): number {
    return this.call(U.IOMMU_HWPT_GET_DIRTY_BITMAP, struct(48, [[4, hwpt, 4], [8, flags, 4], [16, iova, 8], [24, length, 8], [32, pageSize, 8], [40, data, 8]]));
  }

  destroy(id: number): number {
    return this.call(U.IOMMU_DESTROY, struct(8, [[4, id, 4]]));
  }

  snapshot(): unknown {
    const ctx = this.ctx;
    const objects = [...ctx.objects.values()].map((o) => {
      switch (o.kind) {
        case "ioas":
          return { id: o.id, kind: o.kind, areas: o.areas.map((a) => `${a.iova.toString(16)}+${a.length.toString(16)}@${a.uaddr.toString(16)}/${a.prot}`), hwpts: [...o.hwpts].map((h) => h.id) };
        case "hwpt":
          return {
            id: o.id,
            kind: o.kind,
            ioas: o.ioas.id,
            auto: o.auto,
            devices: [...o.devices].map((d) => d.id),
            mappings: o.ioas.areas.map((a) => String(o.domain.iovaToPhys(Number(a.iova + a.length - 4096n)))),
            hw: o.domain.dirtyOps ? hwDirtyState(o.domain, o.ioas.areas.map((a) => [Number(a.iova), Number(a.length)])) : { tables: o.domain.table.tablePages },
          };
        case "device":
          return { id: o.id, kind: o.kind, hwpt: o.hwpt?.id ?? null };
        case "selftest":
          return { id: o.id, kind: o.kind, idev: o.idev.id };
      }
    });
    // The harvest's window buffer, target and gather are a per-fd cache (Linux allocates them
    // per call): made by the first harvest, kept even when that harvest then fails.
    const cache = (ctx as unknown as { scratch: number }).scratch !== 0 ? 3 : 0;
    return {
      objects,
      kernelBlocks: this.sys.kernelBlocks() - cache,
      tablePages: this.sys.tablePages(),
      bitmaps: this.sys.user(this.bitmaps, 0x40000),
    };
  }
}

// ------------------------------------------------------------------ the sweep

/** What one sweep did. */
export interface SweepReport {
  /** Runs with an allocation failed on purpose. */
  faultRuns: number;
  /** Distinct allocation sites reached (kind @ first caller outside the allocator). */
  sites: Set<string>;
  /** Faulted calls that returned an errno (the rest absorbed the failure and succeeded). */
  errnoReturns: number;
  /** Faulted calls that returned 0 having done nothing (Step.dropsErrors). */
  droppedErrors: number;
}

/** Where an allocation was asked for: the first stack frame outside the allocator. */
function allocSite(kind: AllocKind): string {
  const frames = (new Error().stack ?? "").split("\n").slice(1);
  for (const f of frames) {
    if (/[/\\]src[/\\]wasm[/\\]|node_modules|wasm-function|helpers\.ts/.test(f)) continue;
    if (/[/\\](bitmap[/\\]index|iommu[/\\]pgtable[/\\]index)\.ts/.test(f) && kind === "heap") continue; // Bitmap.create, IotlbGather/DirtyTarget.create: report their caller
    const m = /\(?([^()\s]*src[/\\][^()\s]+?):(\d+):\d+\)?$/.exec(f);
    if (m) return `${kind}@${m[1].replace(/.*[/\\]src[/\\]/, "src/")}:${m[2]}`;
  }
  return `${kind}@?`;
}

/**
 * fail_nth over a scenario: for each step and each n = 1, 2, ... (until the step completes
 * without reaching its n-th allocation), rebuild the world, run the earlier steps, make the
 * step's n-th allocation fail, and check: no exception; either the step's normal result and
 * the normal state after it, or an errno with the state exactly as before the step; then
 * the same step again without a fault, and every later step, give the normal results and
 * the normal final state (so no dirty bit was lost on the way).
 */
export function sweepFailNth(core: WasmCore, build: (core: WasmCore) => World, report: SweepReport, maxPerStep = 200, onlyN?: number): void {
  const base = build(core);
  const results: number[] = [];
  const after: string[] = [];
  for (const s of base.steps) {
    results.push(s.run());
    after.push(JSON.stringify(base.snapshot()));
  }
  base.sys.proc.exit();
  const nsteps = base.steps.length;
  for (let i = 0; i < nsteps; i++) {
    for (let n = onlyN ?? 1; n <= (onlyN ?? maxPerStep); n++) {
      const w = build(core);
      for (let k = 0; k < i; k++) w.steps[k].run();
      const before = JSON.stringify(w.snapshot());
      let hits = 0;
      const guard = <T>(fn: () => T): T => {
        w.core.faults.observe((kind) => report.sites.add(allocSite(kind)));
        w.core.faults.failNth(n);
        try {
          return fn();
        } finally {
          hits = w.core.faults.hits;
          w.core.faults.observe(null);
          w.core.faults.failNth(0);
        }
      };
      w.sys.guard = guard;
      const step = w.steps[i];
      let r: number;
      try {
        r = step.run();
      } catch (e) {
        throw new Error(`step ${i} "${step.name}" threw with allocation ${n} failing: ${(e as Error).stack}`);
      }
      w.sys.guard = (fn) => fn();
      if (hits === 0) {
        same(`step ${i} "${step.name}" completed before allocation ${n}`, r, results[i]);
        w.sys.proc.exit();
        break;
      }
      report.faultRuns++;
      const now = w.snapshot();
      const ctx = `step ${i} "${step.name}" with allocation ${n} failing returned ${r}`;
      const unchanged = JSON.stringify(JSON.parse(JSON.stringify(now))) === before;
      if (r === results[i] && !(step.dropsErrors && unchanged)) {
        same(`${ctx}: state after`, now, JSON.parse(after[i]));
      } else if (r === results[i]) {
        report.droppedErrors++;
        same(`${ctx}: the call again`, step.run(), results[i]);
        same(`${ctx}: state after the call again`, w.snapshot(), JSON.parse(after[i]));
      } else {
        report.errnoReturns++;
        same(`${ctx}: an errno`, r < 0, true);
        same(`${ctx}: state unchanged`, now, JSON.parse(before));
        same(`${ctx}: the call again`, step.run(), results[i]);
        same(`${ctx}: state after the call again`, w.snapshot(), JSON.parse(after[i]));
      }
      for (let k = i + 1; k < nsteps; k++) same(`${ctx}: later step ${k} "${w.steps[k].name}"`, w.steps[k].run(), results[k]);
      same(`${ctx}: final state`, w.snapshot(), JSON.parse(after[nsteps - 1]));
      w.sys.proc.exit();
    }
  }
}


/** expect(actual).toEqual(expected), failing with `ctx` first. */
function same(ctx: string, actual: unknown, expected: unknown): void {
  const a = JSON.parse(JSON.stringify(actual)) as unknown;
  if (JSON.stringify(a) === JSON.stringify(expected)) return;
  try {
    expect(a).toEqual(expected);
  } catch (e) {
    throw new Error(`${ctx}\n${(e as Error).message}`);
  }
}
