/**
 * `VfioDevice`: a typed API over one VFIO device fd of a simulated process. Every call is
 * the real ioctl, read(2) or write(2) on the process's fds: arguments are written at their
 * uAPI layouts into a scratch mapping of the process, results read back from it. Kernel
 * errors come back as values (`KernelResult`), never as exceptions.
 */
import { errnoName, kernelFailure, Errno, type KernelResult } from "../uapi/errno";
import {
  DeviceFeature,
  DeviceInfo,
  DmaLoggingControl,
  DmaLoggingRange,
  DmaLoggingReport,
  FeatureMigration,
  MigDataSize,
  MigState,
  PrecopyInfo,
  VFIO_DEVICE_FEATURE,
  VFIO_DEVICE_FEATURE_DMA_LOGGING_REPORT,
  VFIO_DEVICE_FEATURE_DMA_LOGGING_START,
  VFIO_DEVICE_FEATURE_DMA_LOGGING_STOP,
  VFIO_DEVICE_FEATURE_GET,
  VFIO_DEVICE_FEATURE_MIG_DATA_SIZE,
  VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE,
  VFIO_DEVICE_FEATURE_MIGRATION,
  VFIO_DEVICE_FEATURE_SET,
  VFIO_DEVICE_GET_INFO,
  VFIO_DEVICE_RESET,
  VFIO_DEVICE_STATE_NAMES,
  VFIO_MIG_GET_PRECOPY_INFO,
  type VfioMigStateName,
} from "../uapi/vfio";
import type { Process, SyscallResult } from "../process/process";
import { PROT_READ, PROT_WRITE } from "../process/vma";
import type { VfioCoreDevice, VfioDeviceAccess } from "./vfio-main";

/** What VFIO_DEVICE_GET_INFO returned. */
export interface VfioDeviceInfo {
  argsz: number;
  flags: number;
  numRegions: number;
  numIrqs: number;
  capOffset: number;
}

/** One range to log (DMA_LOGGING_START). */
export interface DmaLogRange {
  iova: bigint;
  length: bigint;
}

/** VFIO_MIG_GET_PRECOPY_INFO's answer. */
export interface PrecopyInfoResult {
  initialBytes: bigint;
  dirtyBytes: bigint;
}

/** A state as its enum value or name ("STOP_COPY"). */
export type MigStateArg = number | VfioMigStateName;

/** Bytes of the scratch mapping every call stages its argument in (grown on demand). */
const SCRATCH_MIN = 64 * 1024;

function result<T>(r: SyscallResult, value: () => T): KernelResult<T> {
  return r.ret < 0 ? { ok: false, errno: r.errno, errnoName: errnoName(r.errno) } : { ok: true, value: value() };
}

/** A state argument as its enum value. */
function stateValue(s: MigStateArg): number {
  return typeof s === "number" ? s : VFIO_DEVICE_STATE_NAMES.indexOf(s);
}

/**
 * Makes `path` a device node of `device` in `proc`: each open is a new device file,
 * `access()` saying how it was obtained (default: as from a group, access granted).
 */
export function installVfioDevice(proc: Process, path: string, device: VfioCoreDevice, access: () => VfioDeviceAccess = () => ({ kind: "group" })): void {
  proc.registerDevice(path, () => device.openFile(access()));
}

/** A device fd of a simulated process, with typed calls. */
export class VfioDevice {
  private scratch = 0n;
  private scratchSize = 0;

  constructor(
    readonly proc: Process,
    /** The device fd. */
    readonly fd: number,
  ) {}

  /** open(2)s a device node made by installVfioDevice and wraps the fd. */
  static open(proc: Process, path: string): KernelResult<VfioDevice> {
    const r = proc.open(path);
    return result(r, () => new VfioDevice(proc, r.ret));
  }

  /** VFIO_DEVICE_GET_INFO with a 24-byte struct. */
  getInfo(): KernelResult<VfioDeviceInfo> {
    const b = new Uint8Array(DeviceInfo.SIZE);
    new DataView(b.buffer).setUint32(DeviceInfo.argsz, DeviceInfo.SIZE, true);
    const r = this.call(VFIO_DEVICE_GET_INFO, b);
    return this.read(r, DeviceInfo.SIZE, (dv) => ({
      argsz: dv.getUint32(DeviceInfo.argsz, true),
      flags: dv.getUint32(DeviceInfo.flags, true),
      numRegions: dv.getUint32(DeviceInfo.num_regions, true),
      numIrqs: dv.getUint32(DeviceInfo.num_irqs, true),
      capOffset: dv.getUint32(DeviceInfo.cap_offset, true),
    }));
  }

  /**
   * VFIO_DEVICE_FEATURE as is: `flags` (feature | GET/SET/PROBE), `data` after the header,
   * argsz = 8 + data.length unless given. Returns the data bytes after the call.
   */
  feature(flags: number, data: Uint8Array = new Uint8Array(0), argsz = DeviceFeature.MINSZ + data.length): KernelResult<Uint8Array> {
    const b = new Uint8Array(DeviceFeature.MINSZ + data.length);
    const dv = new DataView(b.buffer);
    dv.setUint32(DeviceFeature.argsz, argsz >>> 0, true);
    dv.setUint32(DeviceFeature.flags, flags >>> 0, true);
    b.set(data, DeviceFeature.data);
    const r = this.call(VFIO_DEVICE_FEATURE, b);
    return this.read(r, b.length, () => this.proc.read(this.scratch + BigInt(DeviceFeature.data), data.length) ?? new Uint8Array(data.length));
  }

  /** VFIO_DEVICE_FEATURE_MIGRATION (GET): the device's migration_flags. */
  migrationFlags(): KernelResult<number> {
    const r = this.feature(VFIO_DEVICE_FEATURE_GET | VFIO_DEVICE_FEATURE_MIGRATION, new Uint8Array(FeatureMigration.SIZE));
    return r.ok ? { ok: true, value: Number(new DataView(r.value.buffer).getBigUint64(0, true)) } : r;
  }

  /**
   * MIG_DEVICE_STATE SET: moves the device to `state`; `dataFd` is the new data fd a
   * saving or resuming arc returned, else null.
   */
  setState(state: MigStateArg): KernelResult<{ dataFd: number | null }> {
    const d = new Uint8Array(MigState.SIZE);
    const v = stateValue(state);
    if (v < 0) return kernelFailure(Errno.EINVAL);
    new DataView(d.buffer).setUint32(MigState.device_state, v >>> 0, true);
    const r = this.feature(VFIO_DEVICE_FEATURE_SET | VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE, d);
    if (!r.ok) return r;
    const fd = new DataView(r.value.buffer).getInt32(MigState.data_fd, true);
    return { ok: true, value: { dataFd: fd >= 0 ? fd : null } };
  }

  /** MIG_DEVICE_STATE GET. */
  getState(): KernelResult<number> {
    const r = this.feature(VFIO_DEVICE_FEATURE_GET | VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE, new Uint8Array(MigState.SIZE));
    return r.ok ? { ok: true, value: new DataView(r.value.buffer).getUint32(MigState.device_state, true) } : r;
  }

  /** The current state's name. */
  getStateName(): KernelResult<VfioMigStateName> {
    const r = this.getState();
    return r.ok ? { ok: true, value: VFIO_DEVICE_STATE_NAMES[r.value] ?? "ERROR" } : r;
  }

  /** VFIO_MIG_GET_PRECOPY_INFO on a data fd. */
  precopyInfo(dataFd: number): KernelResult<PrecopyInfoResult> {
    const b = new Uint8Array(PrecopyInfo.SIZE);
    new DataView(b.buffer).setUint32(PrecopyInfo.argsz, PrecopyInfo.SIZE, true);
    const r = this.call(VFIO_MIG_GET_PRECOPY_INFO, b, dataFd);
    return this.read(r, PrecopyInfo.SIZE, (dv) => ({
      initialBytes: dv.getBigUint64(PrecopyInfo.initial_bytes, true),
      dirtyBytes: dv.getBigUint64(PrecopyInfo.dirty_bytes, true),
    }));
  }

  /** MIG_DATA_SIZE (GET): the bytes STOP_COPY would produce. */
  dataSize(): KernelResult<bigint> {
    const r = this.feature(VFIO_DEVICE_FEATURE_GET | VFIO_DEVICE_FEATURE_MIG_DATA_SIZE, new Uint8Array(MigDataSize.SIZE));
    return r.ok ? { ok: true, value: new DataView(r.value.buffer).getBigUint64(MigDataSize.stop_copy_length, true) } : r;
  }

  /** read(2) of up to `count` bytes from a data fd. */
  readData(dataFd: number, count: number): KernelResult<Uint8Array> {
    const e = this.ensureScratch(count);
    if (e) return kernelFailure(e.errno);
    const r = this.proc.readFd(dataFd, this.scratch, count);
    return result(r, () => this.proc.read(this.scratch, r.ret) ?? new Uint8Array(0));
  }

  /** read(2) until it returns 0 (the end of what the device has now), or the first error. */
  readAllData(dataFd: number, chunk = 4096): KernelResult<Uint8Array> {
    const parts: Uint8Array[] = [];
    for (;;) {
      const r = this.readData(dataFd, chunk);
      if (!r.ok) return r;
      if (r.value.length === 0) break;
      parts.push(r.value);
    }
    const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
    let o = 0;
    for (const p of parts) {
      out.set(p, o);
      o += p.length;
    }
    return { ok: true, value: out };
  }

  /** write(2) of `bytes` to a data fd; the bytes taken. */
  writeData(dataFd: number, bytes: Uint8Array): KernelResult<number> {
    const e = this.ensureScratch(bytes.length);
    if (e) return kernelFailure(e.errno);
    this.proc.write(this.scratch, bytes);
    const r = this.proc.writeFd(dataFd, this.scratch, bytes.length);
    return result(r, () => r.ret);
  }

  /**
   * DMA_LOGGING_START of `ranges` with `pageSize` as a hint; returns the page size the
   * device chose.
   */
  startLogging(ranges: readonly DmaLogRange[], pageSize: bigint): KernelResult<{ pageSize: bigint }> {
    const d = new Uint8Array(DmaLoggingControl.SIZE + ranges.length * DmaLoggingRange.SIZE);
    const dv = new DataView(d.buffer);
    const e = this.ensureScratch(DeviceFeature.MINSZ + d.length);
    if (e) return kernelFailure(e.errno);
    const rangesAt = this.scratch + BigInt(DeviceFeature.MINSZ + DmaLoggingControl.SIZE);
    dv.setBigUint64(DmaLoggingControl.page_size, pageSize, true);
    dv.setUint32(DmaLoggingControl.num_ranges, ranges.length, true);
    dv.setBigUint64(DmaLoggingControl.ranges, rangesAt, true);
    ranges.forEach((r, i) => {
      dv.setBigUint64(DmaLoggingControl.SIZE + i * DmaLoggingRange.SIZE + DmaLoggingRange.iova, r.iova, true);
      dv.setBigUint64(DmaLoggingControl.SIZE + i * DmaLoggingRange.SIZE + DmaLoggingRange.length, r.length, true);
    });
    const r = this.feature(VFIO_DEVICE_FEATURE_SET | VFIO_DEVICE_FEATURE_DMA_LOGGING_START, d, DeviceFeature.MINSZ + DmaLoggingControl.SIZE);
    return r.ok ? { ok: true, value: { pageSize: new DataView(r.value.buffer).getBigUint64(DmaLoggingControl.page_size, true) } } : r;
  }

  /** DMA_LOGGING_STOP. */
  stopLogging(): KernelResult<void> {
    const r = this.feature(VFIO_DEVICE_FEATURE_SET | VFIO_DEVICE_FEATURE_DMA_LOGGING_STOP);
    return r.ok ? { ok: true, value: undefined } : r;
  }

  /**
   * DMA_LOGGING_REPORT of [iova, iova + length) at `pageSize` into a fresh zeroed bitmap
   * (read and clear: the device forgets what it reported); returns the bitmap's bytes.
   */
  report(iova: bigint, length: bigint, pageSize: bigint): KernelResult<Uint8Array> {
    let shift = 0n;
    while (pageSize > 0n && ((pageSize >> shift) & 1n) === 0n) shift++;
    const bits = length === 0n || pageSize === 0n ? 0n : ((length - 1n) >> shift) + 1n;
    const bytes = Number(((bits + 63n) / 64n) * 8n);
    const mapLen = Math.max(4096, Math.ceil(bytes / 4096) * 4096);
    const m = this.proc.mmap(undefined, mapLen, PROT_READ | PROT_WRITE);
    if (m.ret < 0) return kernelFailure(m.errno);
    const bitmap = BigInt(m.ret);
    const d = new Uint8Array(DmaLoggingReport.SIZE);
    const dv = new DataView(d.buffer);
    dv.setBigUint64(DmaLoggingReport.iova, iova, true);
    dv.setBigUint64(DmaLoggingReport.length, length, true);
    dv.setBigUint64(DmaLoggingReport.page_size, pageSize, true);
    dv.setBigUint64(DmaLoggingReport.bitmap, bitmap, true);
    const r = this.feature(VFIO_DEVICE_FEATURE_GET | VFIO_DEVICE_FEATURE_DMA_LOGGING_REPORT, d);
    const out = r.ok ? { ok: true as const, value: this.proc.read(bitmap, bytes) ?? new Uint8Array(bytes) } : r;
    this.proc.munmap(bitmap, mapLen);
    return out;
  }

  /** VFIO_DEVICE_RESET. */
  reset(): KernelResult<void> {
    const r = this.proc.ioctl(this.fd, VFIO_DEVICE_RESET, 0n);
    return result(r, () => undefined);
  }

  /** close(2) of the device fd (and the scratch mapping). */
  close(): KernelResult<void> {
    if (this.scratchSize) this.proc.munmap(this.scratch, this.scratchSize);
    this.scratchSize = 0;
    const r = this.proc.close(this.fd);
    return result(r, () => undefined);
  }

  // ---- staging ----

  /** A scratch mapping of at least `len` bytes; the mmap's failure (errno) or null. */
  private ensureScratch(len: number): SyscallResult | null {
    if (len <= this.scratchSize) return null;
    if (this.scratchSize) this.proc.munmap(this.scratch, this.scratchSize);
    this.scratchSize = 0;
    const size = Math.max(SCRATCH_MIN, Math.ceil(len / 4096) * 4096);
    const m = this.proc.mmap(undefined, size, PROT_READ | PROT_WRITE);
    if (m.ret < 0) return m;
    this.scratch = BigInt(m.ret);
    this.scratchSize = size;
    return null;
  }

  /** Stages `bytes` in the scratch mapping and runs the ioctl (an mmap failure comes back as its errno). */
  private call(cmd: number, bytes: Uint8Array, fd = this.fd): SyscallResult {
    const e = this.ensureScratch(bytes.length);
    if (e) return e;
    this.proc.write(this.scratch, bytes);
    return this.proc.ioctl(fd, cmd, this.scratch);
  }

  private read<T>(r: SyscallResult, len: number, f: (dv: DataView) => T): KernelResult<T> {
    return result(r, () => {
      const b = this.proc.read(this.scratch, len) ?? new Uint8Array(len);
      return f(new DataView(b.buffer, b.byteOffset, b.byteLength));
    });
  }
}
