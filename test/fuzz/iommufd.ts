/**
 * Fuzz target `iommufd`: /dev/iommu in a simulated process, driven through its raw ioctls
 * (IOAS_ALLOC/MAP/UNMAP, HWPT_ALLOC, GET_HW_INFO, HWPT_SET_DIRTY_TRACKING,
 * HWPT_GET_DIRTY_BITMAP, DESTROY and IOMMU_TEST_CMD MOCK_DOMAIN(_FLAGS)/DIRTY) with structs
 * and bitmaps at good and bad user addresses, mprotect/munmap of the bitmap area, and
 * allocation failures injected into the Wasm core and the page-table page allocator.
 *
 * After each call: a failed call left the object table, areas and page tables (leaf by
 * leaf, D bits included) as they were; the object graph is consistent; every area of an
 * IOAS with a HWPT lies in the domain's aperture and translates to its user VA; TEST_CMD
 * DIRTY counted what it marked; and every IOVA marked dirty while tracking is set by the
 * next successful GET_DIRTY_BITMAP that could report it (its bitmap byte lies in the
 * writable prefix of the user bitmap and no hole precedes it in the range).
 */
import { Rng } from "../../src/util/random";
import { WasmCore } from "../../src/wasm/core";
import { Process } from "../../src/process/process";
import { PROT_NONE, PROT_READ, PROT_WRITE } from "../../src/process/vma";
import { installIommufd, IommufdCtx } from "../../src/iommufd";
import * as U from "../../src/iommufd/uapi";
import type { HwptObj, IoasObj } from "../../src/iommufd/ioas";
import { errnoName } from "../../src/uapi/errno";
import type { Finding, Op, Session, Target } from "./engine";
import { AllocFaults, occupyLowMemory } from "./faults";
import { firstDiff } from "./diff";
import { iommufdFailureAllowance } from "./partial-effects";
import { avoidKnownHang } from "./known-open";
import { EDGES, U64, anyU64, argsz, flags, pick, weighted } from "./values";

const ARENA = 0x1000_0000_0000n;
const ARENA_SIZE = 64n << 20n;
const BITMAPS = 0x2000_0000_0000n;
const BITMAPS_SIZE = 1n << 20n;
const SCRATCH = 0x7e00_0000_0000n;
const SCRATCH_SIZE = 0x20000n;
const ARG = SCRATCH;
const TESTBITS = SCRATCH + 0x1000n;
const HWINFO = SCRATCH + 0x8000n;
const RO_PAGE = 0x7f00_0000_0000n;
const NONE_PAGE = 0x7f00_0001_0000n;
const UNMAPPED = 0x7d00_0000_0000n;
/** A page the struct is written into, then made read-only: readable arguments, no write-back. */
const RO_CONTENT = 0x7f00_0002_0000n;
const MPAGE = BigInt(U.MOCK_PAGE_SIZE);
const HUGE = BigInt(U.MOCK_HUGE_PAGE_SIZE);
const APERTURE_START = U.MOCK_APERTURE_START;
const APERTURE_LAST = U.MOCK_APERTURE_LAST;
const hex = (v: bigint): string => `0x${v.toString(16)}`;

type Where = "ok" | "unmapped" | "ro" | "none" | "straddle" | "rocontent";

/** The world of one episode (nothing to choose yet: the mock geometry is fixed). */
export interface IommufdConfig {
  /** Whether the episode starts with an IOAS, a dirty-tracking HWPT on it and a mock device. */
  preset: boolean;
  /** Everything allocated above 2 GiB of linear memory. */
  high?: boolean;
}

interface StepCtx {
  failed: boolean;
  errno: number;
  out: Array<{ kind: Finding["kind"]; message: string }>;
}

const big = (v: unknown): bigint => v as bigint;

/** A live iommufd world. */
export class IommufdSession implements Session {
  readonly core = new WasmCore();
  readonly faults: AllocFaults;
  readonly proc: Process;
  readonly fd: number;
  readonly ctx: IommufdCtx;
  /** Shadow, per HWPT object: tracking on (an ENABLE returned 0), and IOVAs marked dirty since, not yet reported. */
  readonly owed = new Map<HwptObj, Set<bigint>>();

  constructor(readonly cfg: IommufdConfig) {
    if (cfg.high) occupyLowMemory(this.core);
    this.faults = new AllocFaults(this.core);
    this.proc = new Process({ core: this.core });
    installIommufd(this.proc);
    const p = this.proc;
    p.mmap(ARENA, ARENA_SIZE, PROT_READ | PROT_WRITE);
    p.mmap(BITMAPS, BITMAPS_SIZE, PROT_READ | PROT_WRITE);
    p.mmap(SCRATCH, SCRATCH_SIZE, PROT_READ | PROT_WRITE);
    p.mmap(RO_PAGE, 0x1000, PROT_READ);
    p.mmap(NONE_PAGE, 0x1000, PROT_NONE);
    p.mmap(RO_CONTENT, 0x1000, PROT_READ);
    this.fd = p.open("/dev/iommu").ret;
    this.ctx = p.fdget(this.fd) as IommufdCtx;
    if (cfg.preset) {
      this.ioctl(U.IOMMU_IOAS_ALLOC, "ok", U.SIZES.ioasAlloc.size, () => {});
      this.ioctl(U.IOMMU_TEST_CMD, "ok", U.SIZES.testCmd.size, (dv) => {
        dv.setUint32(4, U.IOMMU_TEST_OP_MOCK_DOMAIN, true);
        dv.setUint32(8, 1, true);
      });
      const dev = [...this.ctx.objects.values()].find((o) => o.kind === "device");
      this.ioctl(U.IOMMU_HWPT_ALLOC, "ok", 40, (dv) => {
        dv.setUint32(4, U.IOMMU_HWPT_ALLOC_DIRTY_TRACKING, true);
        dv.setUint32(8, dev?.id ?? 0, true);
        dv.setUint32(12, 1, true);
      });
    }
  }

  dispose(): void {
    this.faults.disarm();
    this.proc.exit();
  }

  /** Writes a struct of `size` bytes (first word = `argsz`) at `where` and issues the ioctl. */
  ioctl(cmd: number, where: Where, size: number, fill: (dv: DataView) => void, argSize = size): { ret: number; errno: number; out: DataView | null } {
    const b = new Uint8Array(Math.max(size, 8) + 64);
    const dv = new DataView(b.buffer);
    fill(dv);
    dv.setUint32(0, argSize, true);
    let at = ARG;
    switch (where) {
      case "ok":
        this.proc.write(ARG, b);
        break;
      case "unmapped":
        at = UNMAPPED;
        break;
      case "ro":
        at = RO_PAGE;
        break;
      case "none":
        at = NONE_PAGE;
        break;
      case "straddle":
        at = SCRATCH + SCRATCH_SIZE - 8n;
        this.proc.write(at, b.subarray(0, 8));
        break;
      case "rocontent":
        at = RO_CONTENT;
        this.proc.mprotect(at, 0x1000, PROT_READ | PROT_WRITE);
        this.proc.write(at, b);
        this.proc.mprotect(at, 0x1000, PROT_READ);
        break;
    }
    const r = this.proc.ioctl(this.fd, cmd, at);
    const back = where === "ok" ? this.proc.read(ARG, b.length) : null;
    return { ...r, out: back ? new DataView(back.buffer, back.byteOffset, back.byteLength) : null };
  }

  step(op: Op): Finding[] {
    if (op.k === "failAlloc") {
      this.faults.arm(op.nth as number);
      return [];
    }
    if (op.k === "failPt") {
      this.faults.armPageTables(op.extra as number);
      return [];
    }
    const injected = this.faults.armed;
    const before = snapshotIommufd(this.ctx);
    const areasBefore = areaKeys(this.ctx);
    const c: StepCtx = { failed: false, errno: 0, out: [] };
    try {
      execIommufd(this, op, c);
    } finally {
      this.faults.disarm();
    }
    const found: Finding[] = c.out.map((m) => ({ kind: m.kind, op: op.k, message: m.message }));
    if (c.failed && iommufdFailureAllowance(op, c.errno) === "none") {
      const d = firstDiff(before, snapshotIommufd(this.ctx));
      if (d) found.push({ kind: "state", op: op.k, message: `failed ${op.k} (${errnoName(c.errno)}) changed the state: ${d}` });
    }
    // The ledger follows the objects: gone HWPTs and unmapped areas take their owed IOVAs.
    for (const h of [...this.owed.keys()]) if (this.ctx.objects.get(h.id) !== h) this.owed.delete(h);
    const now = areaKeys(this.ctx);
    for (const [ioas, keys] of areasBefore) {
      const live = now.get(ioas) ?? new Set<string>();
      for (const k of keys) {
        if (live.has(k)) continue;
        const [iova, len] = k.split(":").map((x) => BigInt(x));
        for (const h of ioas.hwpts) dropRange(this.owed.get(h), iova, iova + len);
      }
    }
    found.push(...invariantsIommufd(this.ctx).map((m) => ({ kind: "invariant" as const, op: op.k, message: m })));
    if (injected) for (const f of found) f.message = f.message.replace(/^([^\n]*)/, "$1 [allocation failure injected]");
    return found;
  }
}

function dropRange(set: Set<bigint> | undefined, lo: bigint, hi: bigint): void {
  if (!set) return;
  for (const a of set) if (a >= lo && a < hi) set.delete(a);
}

function areaKeys(ctx: IommufdCtx): Map<IoasObj, Set<string>> {
  const m = new Map<IoasObj, Set<string>>();
  for (const o of ctx.objects.values()) if (o.kind === "ioas") m.set(o, new Set(o.areas.map((a) => `${a.iova}:${a.length}`)));
  return m;
}

/** Up to `max` sample IOVAs of an area (every mock page when it is small). */
function samples(iova: bigint, length: bigint, max = 64): bigint[] {
  const n = length / MPAGE;
  if (n <= 0n) return [iova];
  const stride = n <= BigInt(max) ? 1n : n / BigInt(max);
  const out: bigint[] = [];
  for (let i = 0n; i < n && out.length < max; i += stride) out.push(iova + i * MPAGE);
  out.push(iova + length - 1n);
  return out;
}

/** Everything a failed call must leave unchanged: objects, areas, and each HWPT's leaves (PTE bits included). */
export function snapshotIommufd(ctx: IommufdCtx): unknown {
  const objs: unknown[] = [];
  for (const [id, o] of [...ctx.objects].sort((a, b) => a[0] - b[0])) {
    switch (o.kind) {
      case "ioas":
        objs.push({ id, kind: o.kind, areas: o.areas.map((a) => ({ ...a })), hwpts: [...o.hwpts].map((h) => h.id).sort() });
        break;
      case "hwpt": {
        const leaves: unknown[] = [];
        for (const a of o.ioas.areas) {
          if (a.iova + a.length > 1n << 53n) continue;
          for (const s of samples(a.iova, a.length, 32)) {
            const l = o.domain.table.lookup(Number(s));
            leaves.push(l ? [l.phys, l.leafIova, l.leafSize, l.pteLo, l.pteHi] : null);
          }
        }
        objs.push({ id, kind: o.kind, ioas: o.ioas.id, auto: o.auto, devices: [...o.devices].map((d) => d.id).sort(), tracking: o.domain.dirtyTracking, leaves });
        break;
      }
      case "device":
        objs.push({ id, kind: o.kind, flags: o.flags, hwpt: o.hwpt?.id ?? null, stdev: o.stdev?.id ?? null });
        break;
      case "selftest":
        objs.push({ id, kind: o.kind, idev: o.idev.id });
        break;
    }
  }
  return objs;
}

/** The object graph's consistency, the aperture, and translations. */
export function invariantsIommufd(ctx: IommufdCtx): string[] {
  const bad: string[] = [];
  for (const [id, o] of ctx.objects) {
    if (o.id !== id) bad.push(`object ${id} has id ${o.id}`);
    if (o.kind === "ioas") {
      for (let i = 1; i < o.areas.length; i++) {
        const p = o.areas[i - 1];
        if (p.iova + p.length > o.areas[i].iova) bad.push(`ioas ${id}: areas overlap at ${hex(o.areas[i].iova)}`);
      }
      for (const h of o.hwpts) if (ctx.objects.get(h.id) !== h) bad.push(`ioas ${id} lists a destroyed hwpt ${h.id}`);
    } else if (o.kind === "hwpt") {
      if (ctx.objects.get(o.ioas.id) !== o.ioas) bad.push(`hwpt ${id} on a destroyed ioas ${o.ioas.id}`);
      if (!o.ioas.hwpts.has(o)) bad.push(`hwpt ${id} missing from its ioas`);
      for (const d of o.devices) if (d.hwpt !== o) bad.push(`hwpt ${id}: device ${d.id} points elsewhere`);
      const mock = [...o.devices].every((d) => !d.iommu);
      for (const a of o.ioas.areas) {
        if (mock && (a.iova < APERTURE_START || a.iova + a.length - 1n > APERTURE_LAST)) {
          bad.push(`aperture: hwpt ${id} maps ioas area ${hex(a.iova)}+${hex(a.length)} outside the mock aperture [${hex(APERTURE_START)}, ${hex(APERTURE_LAST)}]`);
          break;
        }
        if (a.iova + a.length > 1n << 53n) continue;
        for (const s of samples(a.iova, a.length, 8)) {
          const pa = o.domain.iovaToPhys(Number(s));
          const want = a.uaddr + (s - a.iova);
          if (BigInt(pa) !== want) {
            bad.push(`translation: hwpt ${id} iova ${hex(s)} -> ${pa < 0 ? "unmapped" : hex(BigInt(pa))}, area says user VA ${hex(want)}`);
            break;
          }
        }
      }
    } else if (o.kind === "device") {
      if (o.hwpt && (ctx.objects.get(o.hwpt.id) !== o.hwpt || !o.hwpt.devices.has(o))) bad.push(`device ${id} attached to a stale hwpt`);
      if (o.stdev && ctx.objects.get(o.stdev.id) !== o.stdev) bad.push(`device ${id} of a destroyed selftest object`);
    } else if (o.kind === "selftest") {
      if (ctx.objects.get(o.idev.id) !== o.idev) bad.push(`selftest ${id} lost its device`);
    }
  }
  return bad;
}

function note(c: StepCtx, r: { ret: number; errno: number }): number {
  if (r.ret < 0) {
    c.failed = true;
    c.errno = r.errno;
  }
  return r.ret;
}

/** The bitmap's address for a placement. */
function bitmapAddr(where: Where | "abs", off: bigint): bigint {
  switch (where) {
    case "ok":
      return BITMAPS + off;
    case "abs":
      return off;
    case "unmapped":
      return UNMAPPED;
    case "ro":
      return RO_PAGE + (off & 0xfffn);
    case "none":
      return NONE_PAGE;
    case "straddle":
      return BITMAPS + BITMAPS_SIZE - 8n;
    case "rocontent":
      return RO_CONTENT;
  }
}

/** Bytes of [addr, addr+len) the process can write, counted from the start (the pinnable prefix). */
function writablePrefix(proc: Process, addr: bigint, len: bigint): bigint {
  const mem = proc.mm?.memory;
  if (!mem || addr > BigInt(Number.MAX_SAFE_INTEGER) || len <= 0n) return 0n;
  const n = len > 1n << 24n ? 1 << 24 : Number(len);
  return BigInt(mem.accessibleLength(Number(addr), n, true));
}

function execIommufd(s: IommufdSession, op: Op, c: StepCtx): void {
  const p = s.proc;
  const where = (op.at ?? "ok") as Where;
  switch (op.k) {
    case "mprotect":
      note(c, p.mprotect(BITMAPS + big(op.off), big(op.len), op.prot as number));
      return;
    case "munmap":
      note(c, p.munmap(BITMAPS + big(op.off), big(op.len)));
      return;
    case "mmap":
      note(c, p.mmap(BITMAPS + big(op.off), big(op.len), PROT_READ | PROT_WRITE));
      return;
    case "destroy":
      note(c, s.ioctl(U.IOMMU_DESTROY, where, 8, (dv) => dv.setUint32(4, op.id as number, true), op.argsz as number));
      return;
    case "ioasAlloc":
      note(c, s.ioctl(U.IOMMU_IOAS_ALLOC, where, 12, (dv) => dv.setUint32(4, op.flags as number, true), op.argsz as number));
      return;
    case "map": {
      const r = s.ioctl(U.IOMMU_IOAS_MAP, where, 40, (dv) => {
        dv.setUint32(4, op.flags as number, true);
        dv.setUint32(8, op.ioas as number, true);
        dv.setBigUint64(16, big(op.uaddr), true);
        dv.setBigUint64(24, big(op.length), true);
        dv.setBigUint64(32, big(op.iova), true);
      }, op.argsz as number);
      note(c, r);
      return;
    }
    case "unmap":
      note(c, s.ioctl(U.IOMMU_IOAS_UNMAP, where, 24, (dv) => {
        dv.setUint32(4, op.ioas as number, true);
        dv.setBigUint64(8, big(op.iova), true);
        dv.setBigUint64(16, big(op.length), true);
      }, op.argsz as number));
      return;
    case "hwptAlloc":
      note(c, s.ioctl(U.IOMMU_HWPT_ALLOC, where, 40, (dv) => {
        dv.setUint32(4, op.flags as number, true);
        dv.setUint32(8, op.dev as number, true);
        dv.setUint32(12, op.pt as number, true);
      }, op.argsz as number));
      return;
    case "hwInfo":
      note(c, s.ioctl(U.IOMMU_GET_HW_INFO, where, 40, (dv) => {
        dv.setUint32(8, op.dev as number, true);
        dv.setUint32(12, op.len as number, true);
        dv.setBigUint64(16, op.bad ? RO_PAGE : HWINFO, true);
      }, op.argsz as number));
      return;
    case "mock":
      note(c, s.ioctl(U.IOMMU_TEST_CMD, where, 72, (dv) => {
        dv.setUint32(4, op.flags === null ? U.IOMMU_TEST_OP_MOCK_DOMAIN : U.IOMMU_TEST_OP_MOCK_DOMAIN_FLAGS, true);
        dv.setUint32(8, op.pt as number, true);
        if (op.flags !== null) dv.setUint32(28, op.flags as number, true);
      }, op.argsz as number));
      return;
    case "track": {
      const h = s.ctx.get(op.hwpt as number, "hwpt");
      const r = note(c, s.ioctl(U.IOMMU_HWPT_SET_DIRTY_TRACKING, where, 16, (dv) => {
        dv.setUint32(4, op.flags as number, true);
        dv.setUint32(8, op.hwpt as number, true);
      }, op.argsz as number));
      // ENABLE starts from a clean slate (iopt_clear_dirty_data); after DISABLE nothing can be harvested until then.
      if (r === 0 && h) s.owed.set(h, new Set());
      if (r === 0 && h && !((op.flags as number) & 1)) s.owed.delete(h);
      return;
    }
    case "dirty": {
      // TEST_CMD DIRTY: a device write to each IOVA whose bit is set.
      const bits = Uint8Array.from(Buffer.from(op.bits as string, "hex"));
      p.write(TESTBITS, bits);
      const h = s.ctx.get(op.hwpt as number, "hwpt");
      const r = s.ioctl(U.IOMMU_TEST_CMD, where, 72, (dv) => {
        dv.setUint32(4, U.IOMMU_TEST_OP_DIRTY, true);
        dv.setUint32(8, op.hwpt as number, true);
        dv.setBigUint64(24, big(op.iova), true);
        dv.setBigUint64(32, big(op.length), true);
        dv.setBigUint64(40, big(op.pageSize), true);
        dv.setBigUint64(48, op.badBits ? UNMAPPED : TESTBITS, true);
      }, op.argsz as number);
      if (note(c, r) === 0 && h && r.out) {
        const ps = big(op.pageSize);
        const n = ps > 0n ? big(op.length) / ps : 0n;
        let marked = 0n;
        const owed = s.owed.get(h);
        for (let i = 0n; i < n && i < BigInt(bits.length * 8); i++) {
          if (!((bits[Number(i >> 3n)] >> Number(i & 7n)) & 1)) continue;
          // The mock looks the entry up at index iova / page_size of its pfns xarray, which
          // is indexed in MOCK_IO_PAGE_SIZE units (iommufd_test_dirty, recorded on 6.12):
          // with any other page_size it marks the IO page at that index.
          const at = ((big(op.iova) + i * ps) / ps) * BigInt(U.MOCK_PAGE_SIZE);
          if (!h.ioas.areas.some((a) => at >= a.iova && at < a.iova + a.length)) continue;
          marked++;
          owed?.add(at);
        }
        const got = r.out.getBigUint64(56, true);
        if (got !== marked) c.out.push({ kind: "post", message: `TEST_CMD DIRTY reported out_nr_dirty ${got}, but ${marked} of the IOVAs it was given are mapped` });
      }
      return;
    }
    case "get": {
      const h = s.ctx.get(op.hwpt as number, "hwpt");
      const data = bitmapAddr(op.where as Where | "abs", big(op.off));
      const iova = big(op.iova);
      const length = big(op.length);
      const ps = big(op.pageSize);
      const nbits = ps > 0n ? (length + ps - 1n) / ps : 0n;
      const nbytes = (nbits + 7n) / 8n;
      // The VMM zeroes its bitmap first.
      if (nbytes > 0n && nbytes <= BITMAPS_SIZE) {
        const pre = writablePrefix(p, data, nbytes);
        if (pre > 0n) p.fill(data, pre, 0);
      }
      const fl = op.flags as number;
      const injectedBefore = s.faults.injected;
      const r = note(c, s.ioctl(U.IOMMU_HWPT_GET_DIRTY_BITMAP, where, 48, (dv) => {
        dv.setUint32(4, op.hwpt as number, true);
        dv.setUint32(8, fl, true);
        dv.setBigUint64(16, iova, true);
        dv.setBigUint64(24, length, true);
        dv.setBigUint64(32, ps, true);
        dv.setBigUint64(40, data, true);
      }, op.argsz as number));
      const owed = h ? s.owed.get(h) : undefined;
      if (r !== 0 || !h || !owed || ps <= 0n || nbytes > BITMAPS_SIZE) return;
      // How far the areas run without a hole from `iova`.
      let reach = iova;
      for (const a of h.ioas.areas) {
        if (a.iova + a.length <= reach) continue;
        if (a.iova > reach) break;
        reach = a.iova + a.length;
      }
      // iova_bitmap_alloc(): one bit per 2^__ffs(page_size) bytes (page_size need not be a power of two).
      let pgshift = 0n;
      while (((ps >> pgshift) & 1n) === 0n) pgshift++;
      const missing: bigint[] = [];
      for (const at of [...owed]) {
        if (at < iova || at >= iova + length || at >= reach) continue;
        const i = (at - iova) >> pgshift;
        // 6.12 pins bitmap pages lazily, per record: a record whose page cannot be pinned
        // for writing is dropped, and its D bit cleared all the same (partial-effects.ts).
        const byteAt = data + (i >> 3n);
        // A bitmap page whose pin fails (here: its frame cannot be allocated) drops its
        // records too, as pin_user_pages() failing with ENOMEM does in iova_bitmap_set().
        if (writablePrefix(p, byteAt, 1n) === 1n && s.faults.injected === injectedBefore) {
          const set = ((p.read(byteAt, 1)![0] >> Number(i & 7n)) & 1) === 1;
          if (!set) missing.push(at);
        }
        if (!(fl & U.IOMMU_HWPT_GET_DIRTY_BITMAP_NO_CLEAR)) owed.delete(at);
      }
      if (!(fl & U.IOMMU_HWPT_GET_DIRTY_BITMAP_NO_CLEAR)) {
        // Clearing a leaf that the range only partly covers clears all of it (Linux: one D bit per leaf).
        const lo = (iova / HUGE) * HUGE;
        const hi = ((iova + length + HUGE - 1n) / HUGE) * HUGE;
        for (const at of [...owed]) if (at >= lo && at < hi && (at < iova || at >= iova + length)) owed.delete(at);
      }
      if (missing.length) c.out.push({ kind: "lost-dirty", message: `HWPT_GET_DIRTY_BITMAP returned 0 but did not report ${missing.length} IOVA(s) marked dirty while tracking: ${missing.slice(0, 4).map(hex).join(" ")}` });
      return;
    }
    default:
      throw new Error(`fuzz iommufd: unknown op ${op.k}`);
  }
}

// ------------------------------------------------------------------ generation

function whereOf(rng: Rng): Where {
  return weighted(rng, [
    [40, () => "ok" as Where],
    [1, () => "unmapped" as Where],
    [1, () => "ro" as Where],
    [1, () => "none" as Where],
    [1, () => "straddle" as Where],
    [2, () => "rocontent" as Where],
  ]);
}

function ids(s: IommufdSession, kind?: string): number[] {
  return [...s.ctx.objects.values()].filter((o) => !kind || o.kind === kind).map((o) => o.id);
}

function id(rng: Rng, s: IommufdSession, kind: string): number {
  const have = ids(s, kind);
  return weighted(rng, [
    [10, () => (have.length ? pick(rng, have) : 1)],
    [2, () => (ids(s).length ? pick(rng, ids(s)) : 0)],
    [1, () => pick(rng, [0, 1, 2, 3, 64, 0xffffffff])],
  ]);
}

function someArea(rng: Rng, s: IommufdSession): { ioas: IoasObj; iova: bigint; length: bigint } | null {
  const all = [...s.ctx.objects.values()].flatMap((o) => (o.kind === "ioas" ? o.areas.map((a) => ({ ioas: o, iova: a.iova, length: a.length })) : []));
  return all.length ? pick(rng, all) : null;
}

function length(rng: Rng): bigint {
  const hugeOk = !avoidKnownHang("F9");
  return weighted(rng, [
    [10, () => BigInt(rng.range(1, 64)) * MPAGE],
    [4, () => BigInt(rng.range(1, 32)) * 2n * MPAGE],
    [3, () => BigInt(rng.range(1, 3)) * HUGE],
    [1, () => BigInt(rng.range(1, 64)) * MPAGE + BigInt(rng.range(1, 2047))],
    [1, () => pick(rng, [0n, 1n, MPAGE - 1n, 1n << 32n, U64, U64 - 1n, 1n << 53n, 1n << 63n])],
    [hugeOk ? 0.2 : 0, () => pick(rng, [1n << 41n, 1n << 40n])],
  ]);
}

function genIommufd(rng: Rng, s: IommufdSession): Op {
  const a = someArea(rng, s);
  const hwpt = (): number => id(rng, s, "hwpt");
  return weighted<Op>(rng, [
    [3, () => ({ k: "ioasAlloc", at: whereOf(rng), argsz: argsz(rng, 12), flags: rng.chance(0.95) ? 0 : 1 })],
    [14, () => {
      const fixed = rng.chance(0.7);
      const ioasIds = ids(s, "ioas");
      const iova = weighted(rng, [
        [8, () => APERTURE_START + BigInt(rng.range(0, 512)) * 4n * MPAGE],
        [3, () => APERTURE_START + BigInt(rng.range(0, 64)) * HUGE],
        [2, () => (a ? a.iova + a.length : APERTURE_START)],
        [1, () => pick(rng, [...EDGES, 0x1000n, APERTURE_LAST + 1n - MPAGE, APERTURE_LAST - MPAGE + 2n])],
      ]);
      const uaddr = weighted(rng, [
        [10, () => ARENA + BigInt(rng.range(0, 4095)) * 4n * MPAGE],
        [2, () => ARENA + BigInt(rng.range(0, 32)) * HUGE],
        [1, () => pick(rng, [0n, 1n, 1n << 48n, 1n << 51n, (1n << 52n) - HUGE, 1n << 52n, 1n << 56n, U64 - MPAGE + 1n, anyU64(rng)])],
      ]);
      return { k: "map", at: whereOf(rng), argsz: argsz(rng, 40), flags: flags(rng, [fixed ? 7 : 6, fixed ? 3 : 2, 5, 1, 0]), ioas: ioasIds.length ? pick(rng, ioasIds) : id(rng, s, "ioas"), uaddr, length: length(rng), iova };
    }],
    [5, () => {
      const all = rng.chance(0.05);
      return { k: "unmap", at: whereOf(rng), argsz: argsz(rng, 24), ioas: a && rng.chance(0.9) ? a.ioas.id : id(rng, s, "ioas"), iova: all ? 0n : a && rng.chance(0.8) ? a.iova : APERTURE_START, length: all ? U64 : a && rng.chance(0.8) ? a.length * BigInt(rng.range(1, 2)) : length(rng) };
    }],
    [4, () => ({ k: "hwptAlloc", at: whereOf(rng), argsz: argsz(rng, pick(rng, [24, 40])), flags: flags(rng, [2, 2, 0, 1, 3]), dev: id(rng, s, "device"), pt: id(rng, s, "ioas") })],
    [4, () => ({ k: "mock", at: whereOf(rng), argsz: argsz(rng, 72), pt: rng.chance(0.5) ? id(rng, s, "ioas") : hwpt(), flags: rng.chance(0.4) ? null : flags(rng, [0, 1, 2, 3]) })],
    [2, () => ({ k: "destroy", at: whereOf(rng), argsz: argsz(rng, 8), id: pick(rng, [...ids(s), 0, 99]) })],
    [1, () => ({ k: "hwInfo", at: whereOf(rng), argsz: argsz(rng, pick(rng, [32, 40])), dev: id(rng, s, "device"), len: pick(rng, [0, 4, 8, 16, 4096]), bad: rng.chance(0.2) })],
    [5, () => ({ k: "track", at: whereOf(rng), argsz: argsz(rng, 16), hwpt: hwpt(), flags: flags(rng, [1, 1, 1, 0]) })],
    [14, () => {
      const h = s.ctx.get(hwpt(), "hwpt");
      const ar = h && h.ioas.areas.length ? pick(rng, h.ioas.areas) : a;
      const ps = weighted(rng, [[10, () => MPAGE], [2, () => 4096n], [1, () => HUGE], [1, () => pick(rng, [0n, 1n, 3n, 1n << 63n])]]);
      const base = ar ? ar.iova : APERTURE_START;
      const n = BigInt(rng.range(1, 256));
      const bits = new Uint8Array(Number((n + 7n) / 8n));
      for (let i = 0; i < bits.length; i++) bits[i] = rng.chance(0.3) ? rng.u32() & 0xff : rng.chance(0.5) ? 0xff : 0;
      return { k: "dirty", at: whereOf(rng), argsz: argsz(rng, 72), hwpt: h?.id ?? hwpt(), iova: base, length: n * ps, pageSize: ps, bits: Buffer.from(bits).toString("hex"), badBits: rng.chance(0.03) };
    }],
    [16, () => {
      const h = s.ctx.get(hwpt(), "hwpt");
      const areas = h ? h.ioas.areas : [];
      let iova = APERTURE_START;
      let len = 64n * MPAGE;
      if (areas.length && rng.chance(0.9)) {
        const i = rng.int(areas.length);
        const j = rng.chance(0.6) ? i : Math.min(areas.length - 1, i + rng.range(0, 3));
        iova = areas[i].iova;
        len = areas[j].iova + areas[j].length - iova;
        if (rng.chance(0.1)) iova = iova - (iova % HUGE);
      } else if (rng.chance(0.3)) {
        iova = pick(rng, EDGES);
        len = pick(rng, EDGES);
      }
      const ps = weighted(rng, [[12, () => MPAGE], [3, () => 4096n], [1, () => HUGE], [1, () => pick(rng, [0n, 1n, 3n, 1024n, 1n << 63n])]]);
      const w = weighted(rng, [[30, () => "ok" as const], [1, () => "abs" as const], [1, () => "unmapped" as const], [2, () => "ro" as const], [1, () => "none" as const], [1, () => "straddle" as const]]);
      const off = w === "abs" ? pick(rng, [0n, 1n, U64 - 7n, BITMAPS - 3n]) : BigInt(rng.range(0, 255)) * 4096n + (rng.chance(0.3) ? BigInt(rng.range(1, 4095)) : 0n);
      return { k: "get", at: whereOf(rng), argsz: argsz(rng, 48), hwpt: h?.id ?? hwpt(), flags: flags(rng, [0, 0, 0, 1]), iova, length: len, pageSize: ps, where: w, off };
    }],
    [2, () => ({ k: "mprotect", off: BigInt(rng.range(0, 255)) * 4096n, len: BigInt(rng.range(1, 4)) * 4096n, prot: pick(rng, [PROT_NONE, PROT_READ, PROT_READ | PROT_WRITE, PROT_READ | PROT_WRITE]) })],
    [1, () => ({ k: "munmap", off: BigInt(rng.range(0, 255)) * 4096n, len: BigInt(rng.range(1, 4)) * 4096n })],
    [1, () => ({ k: "mmap", off: BigInt(rng.range(0, 255)) * 4096n, len: BigInt(rng.range(1, 4)) * 4096n })],
    [1, () => ({ k: "failAlloc", nth: rng.range(1, 4) })],
    [1, () => ({ k: "failPt", extra: rng.range(0, 3) })],
  ]);
}

/** The iommufd target. */
export const iommufdTarget: Target<IommufdConfig> = {
  name: "iommufd",
  config: (rng) => ({ preset: rng.chance(0.7), high: rng.chance(avoidKnownHang("F2") ? 0.01 : 0.1) }),
  open: (cfg) => new IommufdSession(cfg),
  gen: (rng, s) => genIommufd(rng, s as IommufdSession),
};
