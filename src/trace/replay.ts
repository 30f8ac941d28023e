/**
 * Replays a vfio-trace script against the model and prints what the oracle's runner
 * (shared/kernel-oracle/vfio-trace-run.c) prints: the same bytes in the same user-memory
 * layouts, through the simulated process's syscalls.
 */
import { argFunction, argObject, argString } from "../util/args";
import type { CoreInput } from "../wasm/core";
import { errnoName, Errno } from "../uapi/errno";
import {
  DirtyBitmap,
  DirtyBitmapGet,
  DmaMap,
  DmaUnmap,
  Type1Info,
  CapHeader,
  CapIovaRange,
  CapMigration,
  CapDmaAvail,
  VFIO_CHECK_EXTENSION,
  VFIO_GROUP_SET_CONTAINER,
  VFIO_IOMMU_DIRTY_PAGES,
  VFIO_IOMMU_GET_INFO,
  VFIO_IOMMU_MAP_DMA,
  VFIO_IOMMU_UNMAP_DMA,
  VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE,
  VFIO_IOMMU_TYPE1_INFO_CAP_MIGRATION,
  VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL,
  VFIO_SET_IOMMU,
  VfioBitmap,
  U64_MASK,
} from "../uapi/vfio";
import { Process, SyscallResult } from "../process/process";
import { PROT_NONE, PROT_READ, PROT_WRITE } from "../process/vma";
import { Platform, vtdPlatform } from "../iommu/platform";
import { installVfio, VfioContainer } from "../type1/container";
import { DEFAULT_TYPE1_OPTIONS, type Type1Options, type1Kernel } from "../type1/options";
import type { VfioIommu } from "../type1/vfio-iommu";
import { TraceLine, addrOf, numOf, parseTrace, sval } from "./parse";
import { formatUserBuffer } from "./print";
import { IommufdWorld } from "./iommufd";
import { installIommufdWorld } from "./worlds";

/** The oracle's arena base. */
export const ARENA_BASE = 0x1000_0000_0000n;
/** Where the replay keeps the runner's own buffers (its .bss and stack), far from the arena. */
const SCRATCH_BASE = 0x7e00_0000_0000n;
const SCRATCH_SIZE = 0x20000n;
const INFO_BUF = SCRATCH_BASE; // 64 KiB
const ARG_BUF = SCRATCH_BASE + 0x10000n; // unmap/dirty/map structs
const FD_BUF = SCRATCH_BASE + 0x18000n;

/** Options of a replay. */
export interface ReplayOptions {
  /** The machine (default: the oracle's VT-d preset). */
  platform?: Platform;
  /** type1 options (profile, bitmapCopy, ...); the profile also picks the process's GUP behaviour. */
  type1?: Partial<Type1Options>;
  /** A Wasm core to share (tests that replay many files), or the compiled module to instantiate. */
  core?: CoreInput;
}

/** What one executed line did, for callers that observe the model around each call. */
export interface ReplayStep {
  line: TraceLine;
  /** The printed line, with its newline ("" for nothing). */
  output: string;
  /** Whether the call failed (RET < 0). */
  failed: boolean;
}

const fmtRet = (r: SyscallResult): string => ` = ${r.ret} ${r.errno ? errnoName(r.errno) : "OK"}`;
const hex = (v: bigint): string => `0x${v.toString(16)}`;

/** The world of one trace: a process with the arena, a container and the group. */
export class TraceRunner {
  readonly proc: Process;
  private container = -1;
  private group = -1;
  private arenaSize = 0n;
  private readonly platform: Platform;
  /** Set when the runner would have died (FATAL or a segfault); nothing more is printed. */
  dead = false;
  /** Which world the script chose with its first line (`world mock|edu`); "type1" otherwise. */
  world: "none" | "type1" | "mock" | "edu" = "none";
  /** The iommufd world's files and values (null in the type1 world). */
  iommufdWorld: IommufdWorld | null = null;

  constructor(readonly opts: ReplayOptions = {}) {
    this.platform = opts.platform ?? vtdPlatform();
    this.proc = new Process({ core: opts.core, gup: type1Kernel(opts.type1?.profile ?? DEFAULT_TYPE1_OPTIONS.profile).gup });
    installVfio(this.proc, this.platform, opts.type1 ?? {});
    this.proc.mmap(SCRATCH_BASE, SCRATCH_SIZE, PROT_READ | PROT_WRITE);
  }

  /** The container's type1 state (null before SET_IOMMU). */
  get iommu(): VfioIommu | null {
    const f = this.proc.fdget(this.container);
    return f instanceof VfioContainer ? f.iommu : null;
  }

  /**
   * The runner's start-up: a 64 MiB arena. The world follows from the first line: a
   * TYPE1v2 container is set up before it unless it is `world mock|edu` (see
   * finish() for a script without lines). Returns a FATAL line or "".
   */
  start(): string {
    return this.setArena(64n << 20n);
  }

  /** After the last line: a script that had none still set up its container. */
  finish(): string {
    if (this.world !== "none" || this.dead) return "";
    this.world = "type1";
    return this.setupContainer(3n);
  }

  private setArena(size: bigint): string {
    if (this.arenaSize) this.proc.munmap(ARENA_BASE, this.arenaSize);
    this.arenaSize = size;
    const r = this.proc.mmap(ARENA_BASE, size, PROT_READ | PROT_WRITE);
    if (r.ret < 0) {
      this.dead = true;
      return `FATAL arena ${errnoName(r.errno)}\n`;
    }
    return "";
  }

  private setupContainer(type: bigint): string {
    if (this.group >= 0) this.proc.close(this.group);
    if (this.container >= 0) this.proc.close(this.container);
    const c = this.proc.open("/dev/vfio/vfio");
    const g = this.proc.open(`/dev/vfio/${this.platform.groups[0]?.id ?? 0}`);
    this.container = c.ret;
    this.group = g.ret;
    if (c.ret < 0 || g.ret < 0) {
      this.dead = true;
      return `FATAL open container/group errno=${errnoName((c.ret < 0 ? c : g).errno)}\n`;
    }
    const fdBytes = new Uint8Array(4);
    new DataView(fdBytes.buffer).setInt32(0, this.container, true);
    this.proc.write(FD_BUF, fdBytes);
    let r = this.proc.ioctl(this.group, VFIO_GROUP_SET_CONTAINER, FD_BUF);
    if (r.ret) {
      this.dead = true;
      return `FATAL set container ${errnoName(r.errno)}\n`;
    }
    r = this.proc.ioctl(this.container, VFIO_SET_IOMMU, type & 0xffff_ffffn);
    if (r.ret) {
      this.dead = true;
      return `FATAL set iommu ${errnoName(r.errno)}\n`;
    }
    return "";
  }

  private num(toks: string[], key: string, def: bigint): bigint {
    return numOf(toks, key, def, ARENA_BASE);
  }

  private addr(toks: string[], key: string): bigint {
    return addrOf(sval(toks, key) ?? "0", ARENA_BASE);
  }

  private buf(label: string, a: bigint, n: bigint): string {
    return ` ${label}=${formatUserBuffer(this.proc, a, n)}`;
  }

  /** Executes one line; returns what the runner prints for it. */
  step(line: TraceLine): ReplayStep {
    if (this.dead) return { line, output: "", failed: false };
    const t = line.toks;
    const op = t[0];
    const u32 = (v: bigint): number => Number(v & 0xffff_ffffn);
    let pre = "";
    if (this.world === "none") {
      if (op === "world" && (t[1] === "mock" || t[1] === "edu")) {
        this.world = t[1];
        this.iommufdWorld = installIommufdWorld(this.proc, t[1], ARENA_BASE);
        const out = `world ${t[1]}\n` + this.iommufdWorld.openIommufd();
        this.dead = this.iommufdWorld.dead;
        return { line, output: out, failed: false };
      }
      this.world = "type1";
      pre = this.setupContainer(3n);
      if (this.dead) return { line, output: pre, failed: false };
    }
    const w = this.iommufdWorld;
    if (w && op === "case") {
      let out = `case ${t.length > 1 ? t[1] : "?"}\n`;
      this.proc.setCapIpcLock(true);
      this.proc.setCapSysResource(true);
      this.proc.setrlimitMemlock(U64_MASK, U64_MASK);
      w.resetCase();
      out += this.setArena(this.num(t, "arena", 64n << 20n));
      if (!this.dead) out += w.openIommufd();
      this.dead ||= w.dead;
      return { line, output: out, failed: false };
    }
    if (w) {
      const r = w.step(t);
      if (r !== null) {
        if (w.dead) {
          // The runner died of SIGSEGV: its unflushed partial line is lost, the shell reports the signal.
          this.dead = true;
          return { line, output: "Segmentation fault\n", failed: true };
        }
        return { line, output: `${line.lineno} ${op}${r}\n`, failed: r.startsWith(" = -1") };
      }
    }
    if (op === "case") {
      let out = `case ${t.length > 1 ? t[1] : "?"}\n`;
      this.proc.setCapIpcLock(true);
      this.proc.setrlimitMemlock(U64_MASK, U64_MASK);
      out += this.setArena(this.num(t, "arena", 64n << 20n));
      if (!this.dead) out += this.setupContainer(this.num(t, "iommu", 3n));
      return { line, output: out, failed: false };
    }
    let out = `${line.lineno} ${op}`;
    let failed = false;
    const note = (r: SyscallResult): string => {
      if (r.ret < 0) failed = true;
      return fmtRet(r);
    };
    const p = this.proc;
    if (op === "mprotect") {
      const ps = sval(t, "prot");
      const prot = ps === "none" ? PROT_NONE : ps === "r" ? PROT_READ : PROT_READ | PROT_WRITE;
      out += note(p.mprotect(this.addr(t, "addr"), this.num(t, "size", 0n), prot));
    } else if (op === "munmap") {
      out += note(p.munmap(this.addr(t, "addr"), this.num(t, "size", 0n)));
    } else if (op === "fill") {
      const r = p.fill(this.addr(t, "addr"), this.num(t, "size", 0n), Number(this.num(t, "byte", 0n) & 0xffn));
      if (r.ret < 0) {
        // memset on memory the process cannot write: the runner dies of SIGSEGV, its
        // unflushed partial line is lost, and the oracle's shell reports the signal.
        this.dead = true;
        return { line, output: "Segmentation fault\n", failed: true };
      }
      out += " = 0 OK";
    } else if (op === "peek") {
      out += " = 0 OK" + this.buf("bytes", this.addr(t, "addr"), this.num(t, "size", 0n));
    } else if (op === "memlock") {
      const b = this.num(t, "bytes", 0n);
      out += note(p.setrlimitMemlock(b, b));
    } else if (op === "cap_ipc_lock") {
      out += note(p.setCapIpcLock(u32(this.num(t, "on", 1n)) !== 0));
    } else if (op === "locked") {
      out += ` = 0 OK locked_kb=${p.vmLckKb()}`;
    } else if (op === "ext") {
      out += note(p.ioctl(this.container, VFIO_CHECK_EXTENSION, this.num(t, "id", 0n)));
    } else if (op === "info") {
      out += this.info(t, note);
    } else if (op === "map" || op === "maps") {
      out += this.map(t, op === "maps", note);
    } else if (op === "unmap") {
      out += this.unmap(t, note);
    } else if (op === "dirty") {
      out += this.dirty(t, note);
    } else {
      out += " = -1 UNKNOWN-OP";
    }
    return { line, output: pre + out + "\n", failed };
  }

  private info(t: string[], note: (r: SyscallResult) => string): string {
    const p = this.proc;
    p.fill(INFO_BUF, 0x10000, 0);
    const hdr = new DataView(new ArrayBuffer(4));
    hdr.setUint32(0, Number(this.num(t, "argsz", BigInt(Type1Info.SIZE)) & 0xffff_ffffn), true);
    p.write(INFO_BUF, new Uint8Array(hdr.buffer));
    const r = p.ioctl(this.container, VFIO_IOMMU_GET_INFO, INFO_BUF);
    let out = note(r);
    if (r.ret === 0) {
      const buf = p.read(INFO_BUF, 0x10000)!;
      const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
      const capOffset = dv.getUint32(Type1Info.cap_offset, true);
      out += ` argsz=${dv.getUint32(Type1Info.argsz, true)} flags=0x${dv.getUint32(Type1Info.flags, true).toString(16)} pgsizes=${hex(dv.getBigUint64(Type1Info.iova_pgsizes, true))} cap_offset=${capOffset}`;
      // The runner walks the chain without bounds checks beyond the 64 KiB buffer.
      for (let off = capOffset; off && off < 0x10000; ) {
        const id = dv.getUint16(off + CapHeader.id, true);
        const version = dv.getUint16(off + CapHeader.version, true);
        out += ` cap${id}.v${version}@${off}`;
        if (id === VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE) {
          const n = dv.getUint32(off + CapIovaRange.nr_iovas, true);
          out += `[n=${n}`;
          for (let i = 0; i < n; i++) {
            const o = off + CapIovaRange.iova_ranges + i * 16;
            out += ` ${hex(dv.getBigUint64(o, true))}-${hex(dv.getBigUint64(o + 8, true))}`;
          }
          out += "]";
        } else if (id === VFIO_IOMMU_TYPE1_INFO_CAP_MIGRATION) {
          out += `[flags=0x${dv.getUint32(off + CapMigration.flags, true).toString(16)} pgsize_bitmap=${hex(dv.getBigUint64(off + CapMigration.pgsize_bitmap, true))} max_dirty_bitmap_size=${hex(dv.getBigUint64(off + CapMigration.max_dirty_bitmap_size, true))}]`;
        } else if (id === VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL) {
          out += `[avail=${dv.getUint32(off + CapDmaAvail.avail, true)}]`;
        }
        off = dv.getUint32(off + CapHeader.next, true);
      }
    }
    return out;
  }

  private map(t: string[], many: boolean, note: (r: SyscallResult) => string): string {
    const p = this.proc;
    const s = new DataView(new ArrayBuffer(DmaMap.SIZE));
    s.setUint32(DmaMap.argsz, Number(this.num(t, "argsz", BigInt(DmaMap.SIZE)) & 0xffff_ffffn), true);
    s.setUint32(DmaMap.flags, Number(this.num(t, "flags", 3n) & 0xffff_ffffn), true);
    let vaddr = this.addr(t, "vaddr");
    let iova = this.num(t, "iova", 0n);
    const size = this.num(t, "size", 0n);
    s.setBigUint64(DmaMap.size, size, true);
    const count = many ? this.num(t, "count", 1n) : 1n;
    let done = 0n;
    let r: SyscallResult = { ret: 0, errno: 0 };
    for (; done < count; done++) {
      s.setBigUint64(DmaMap.vaddr, vaddr, true);
      s.setBigUint64(DmaMap.iova, iova, true);
      p.write(ARG_BUF, new Uint8Array(s.buffer));
      r = p.ioctl(this.container, VFIO_IOMMU_MAP_DMA, ARG_BUF);
      if (r.ret) break;
      iova = (iova + this.num(t, "iova_step", size)) & U64_MASK;
      vaddr = (vaddr + this.num(t, "vaddr_step", 0n)) & U64_MASK;
    }
    let out = note(r);
    if (count > 1n) out += ` done=${done}`;
    return out;
  }

  private unmap(t: string[], note: (r: SyscallResult) => string): string {
    const p = this.proc;
    const b = new Uint8Array(64);
    const s = new DataView(b.buffer);
    s.setUint32(DmaUnmap.argsz, Number(this.num(t, "argsz", BigInt(DmaUnmap.SIZE)) & 0xffff_ffffn), true);
    s.setUint32(DmaUnmap.flags, Number(this.num(t, "flags", 0n) & 0xffff_ffffn), true);
    s.setBigUint64(DmaUnmap.iova, this.num(t, "iova", 0n), true);
    s.setBigUint64(DmaUnmap.size, this.num(t, "size", 0n), true);
    const bsize = this.num(t, "bitmap_size", 0n);
    const data = this.addr(t, "data");
    s.setBigUint64(DmaUnmap.data + VfioBitmap.pgsize, this.num(t, "pgsize", 0n), true);
    s.setBigUint64(DmaUnmap.data + VfioBitmap.size, bsize, true);
    s.setBigUint64(DmaUnmap.data + VfioBitmap.data, data, true);
    p.write(ARG_BUF, b);
    const r = p.ioctl(this.container, VFIO_IOMMU_UNMAP_DMA, ARG_BUF);
    const after = p.read(ARG_BUF, 64)!;
    let out = note(r) + ` size=${hex(new DataView(after.buffer, after.byteOffset).getBigUint64(DmaUnmap.size, true))}`;
    if (sval(t, "data") !== null) out += this.buf("bitmap", data, this.num(t, "show", bsize));
    return out;
  }

  private dirty(t: string[], note: (r: SyscallResult) => string): string {
    const p = this.proc;
    const b = new Uint8Array(128);
    const s = new DataView(b.buffer);
    s.setUint32(DirtyBitmap.argsz, Number(this.num(t, "argsz", BigInt(DirtyBitmap.SIZE + DirtyBitmapGet.SIZE)) & 0xffff_ffffn), true);
    s.setUint32(DirtyBitmap.flags, Number(this.num(t, "flags", 0n) & 0xffff_ffffn), true);
    const g = DirtyBitmap.data;
    const bsize = this.num(t, "bitmap_size", 0n);
    const data = this.addr(t, "data");
    s.setBigUint64(g + DirtyBitmapGet.iova, this.num(t, "iova", 0n), true);
    s.setBigUint64(g + DirtyBitmapGet.size, this.num(t, "size", 0n), true);
    s.setBigUint64(g + DirtyBitmapGet.bitmap + VfioBitmap.pgsize, this.num(t, "pgsize", 0n), true);
    s.setBigUint64(g + DirtyBitmapGet.bitmap + VfioBitmap.size, bsize, true);
    s.setBigUint64(g + DirtyBitmapGet.bitmap + VfioBitmap.data, data, true);
    p.write(ARG_BUF, b);
    const r = p.ioctl(this.container, VFIO_IOMMU_DIRTY_PAGES, ARG_BUF);
    let out = note(r);
    if (sval(t, "data") !== null) out += this.buf("bitmap", data, this.num(t, "show", bsize));
    return out;
  }
}

/**
 * Replays a whole script and returns exactly what the oracle prints for it.
 * `onStep` sees every executed line (after it ran).
 */
export function replayTrace(text: string, opts: ReplayOptions = {}, onStep?: (s: ReplayStep, runner: TraceRunner) => void): string {
  argString("text", text);
  argObject("opts", opts);
  if (onStep !== undefined) argFunction("onStep", onStep);
  const runner = new TraceRunner(opts);
  let out = runner.start();
  for (const line of parseTrace(text)) {
    if (runner.dead) break;
    const s = runner.step(line);
    out += s.output;
    onStep?.(s, runner);
  }
  out += runner.finish();
  runner.proc.exit();
  return out;
}

export { Errno };
