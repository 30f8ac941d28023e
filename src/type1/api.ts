/**
 * A typed API over the raw type1 ioctls for everyday use. Every call still goes through the
 * simulated process: arguments are written at their uAPI layouts into a scratch mapping of
 * the process, the ioctl runs on the container fd, and results are read back. MAP_DMA, the
 * call a VMM makes by the thousand, stores its struct the same way but hands the container
 * the fields it stored rather than having the kernel copy them back (the same checks, the
 * same answers: test/type1/api-map-direct.test.ts). Kernel errors come back as values
 * (`{ ok: false, errno }`), never as exceptions.
 */
import { errnoName, Errno, kernelFailure, type KernelResult } from "../uapi/errno";
import * as uapi from "../uapi/vfio";
import { Process, SyscallResult, toResult, type ProcessOptions } from "../process/process";
import { PROT_READ, PROT_WRITE } from "../process/vma";
import type { IovaRange } from "../iommu/domain";
import { Platform, vtdPlatform } from "../iommu/platform";
import { VfioContainer, installVfio } from "./container";
import { DEFAULT_TYPE1_OPTIONS, type Type1Options, type1Kernel } from "./options";
import { LOCK_ACCOUNTING_NAMES } from "./lock-acct";
import type { DmaMapArgs, VfioIommu } from "./vfio-iommu";
import { argBool, argInt, argObject, argULong } from "../util/args";
import { WasmCore, isWasmCore, type CoreInput } from "../wasm/core";
import { isWasmModule } from "../wasm/webassembly-types";
import { LITTLE_ENDIAN } from "../util/endian";
// Copied once: under a loader that wraps modules (tsx, esbuild) every read of an imported
// binding is a getter call, and these are read on every MAP_DMA / UNMAP_DMA.
const {
  CapHeader,
  CapIovaRange,
  CapMigration,
  CapDmaAvail,
  DirtyBitmap,
  DirtyBitmapGet,
  DmaMap,
  DmaUnmap,
  Type1Info,
  VfioBitmap,
  VFIO_CHECK_EXTENSION,
  VFIO_DMA_MAP_FLAG_READ,
  VFIO_DMA_MAP_FLAG_VADDR,
  VFIO_DMA_MAP_FLAG_WRITE,
  VFIO_DMA_UNMAP_FLAG_ALL,
  VFIO_DMA_UNMAP_FLAG_GET_DIRTY_BITMAP,
  VFIO_DMA_UNMAP_FLAG_VADDR,
  VFIO_GROUP_SET_CONTAINER,
  VFIO_IOMMU_DIRTY_PAGES,
  VFIO_IOMMU_DIRTY_PAGES_FLAG_GET_BITMAP,
  VFIO_IOMMU_DIRTY_PAGES_FLAG_START,
  VFIO_IOMMU_DIRTY_PAGES_FLAG_STOP,
  VFIO_IOMMU_GET_INFO,
  VFIO_IOMMU_MAP_DMA,
  VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE,
  VFIO_IOMMU_TYPE1_INFO_CAP_MIGRATION,
  VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL,
  VFIO_IOMMU_UNMAP_DMA,
  VFIO_SET_IOMMU,
  VFIO_TYPE1v2_IOMMU,
  VFIO_TYPE1_IOMMU,
} = uapi;

/** A request's u64 field, checked (TypeError/RangeError naming it). */
const field = (req: string, name: string, v: unknown): bigint =>
  // A u64 bigint (every well-formed call) passes as is, before the name string is built.
  // (asUintN(64, v) === v is that range test in one operation: half the time of two compares.)
  typeof v === "bigint" && BigInt.asUintN(64, v) === v ? v : argULong(`${req}.${name}`, v);

/**
 * The little-endian u64 at 32-bit word `w` of `u` as a Number when below 2^53 (exact), else
 * -1: DmaMapArgs' vaddrN/iovaN/sizeN. On a big-endian platform the words are byte-swapped,
 * so it answers -1 there (vfio_dma_do_map() then converts the BigInts).
 */
function exactN(u: Uint32Array, w: number): number {
  if (!LITTLE_ENDIAN) return -1;
  const hi = u[w + 1];
  return hi < 0x200000 ? hi * 4294967296 + u[w] : -1;
}

/** A UserBitmap argument, checked. */
function checkBitmap(name: string, b: UserBitmap): UserBitmap {
  argObject(name, b);
  return { pgsize: field(name, "pgsize", b.pgsize), size: field(name, "size", b.size), data: field(name, "data", b.data) };
}

/** An optional boolean option. */
function optBool(name: string, v: unknown): boolean | undefined {
  return v === undefined ? undefined : argBool(name, v);
}

export type { KernelResult };

function result<T>(r: SyscallResult, value: () => T): KernelResult<T> {
  return r.ret < 0 ? { ok: false, errno: r.errno, errnoName: errnoName(r.errno) } : { ok: true, value: value() };
}

const failure = <T>(errno: number): KernelResult<T> => kernelFailure<T>(errno);

/** result()'s value for calls that return nothing (one function, not a closure per call). */
const noValue = (): undefined => undefined;

/** MAP_DMA arguments. `read`/`write` are from the device's point of view. */
export interface MapDmaRequest {
  iova: bigint;
  vaddr: bigint;
  size: bigint;
  read?: boolean;
  write?: boolean;
}

/** UNMAP_DMA arguments; `all` is VFIO_DMA_UNMAP_FLAG_ALL (iova and size must then be 0). */
export interface UnmapDmaRequest {
  iova: bigint;
  size: bigint;
  all?: boolean;
}

/** A dirty bitmap in the process's memory: `data` points at `size` bytes, one bit per `pgsize`. */
export interface UserBitmap {
  pgsize: bigint;
  size: bigint;
  data: bigint;
}

/** GET_INFO, decoded. */
export interface Type1Info {
  argsz: number;
  flags: number;
  iovaPgsizes: bigint;
  /** IOVA_RANGE capability (inclusive ranges), when present. */
  iovaRanges?: IovaRange[];
  /** MIGRATION capability, when present. */
  migration?: { flags: number; pgsizeBitmap: bigint; maxDirtyBitmapSize: bigint };
  /** DMA_AVAIL capability, when present. */
  dmaAvail?: number;
}

/** Options of `Type1Handle.open`. */
export interface OpenType1Options {
  /** TYPE1 (v1) or TYPE1v2 (default). */
  version?: 1 | 2;
  /** Which group of the platform to attach (default: its first group). */
  groupId?: number;
}

const SCRATCH = 0x10000;

/**
 * A process with VFIO installed: the usual starting point of the typed API. The type1
 * profile also picks the process's kernel behaviour (what pinning does, `GupBehaviour`).
 * `type1.lockAccounting` picks the accounting design (`synchronous`, Linux 4.11+, or
 * `workqueue`, Linux <= 4.10); `process` sets the rest of the process: the Wasm `core` to
 * run on (or the compiled module to instantiate; default: a new core on the default
 * module, see `init`), RLIMIT_MEMLOCK, CAP_IPC_LOCK, and `sched`, the `Scheduler` whose
 * simulated threads share its mm. A WasmCore or module alone may stand for `{ core }`.
 */
export function createVfioProcess(platform: Platform = vtdPlatform(), type1: Partial<Type1Options> = {}, process: Omit<ProcessOptions, "gup"> | CoreInput = {}): Process {
  argObject("platform", platform);
  argObject("type1", type1);
  argObject("process", process);
  if (type1.lockAccounting !== undefined && !LOCK_ACCOUNTING_NAMES.includes(type1.lockAccounting)) {
    throw new RangeError(`type1.lockAccounting must be one of ${LOCK_ACCOUNTING_NAMES.join(", ")}, got ${String(type1.lockAccounting)}`);
  }
  const opts: Omit<ProcessOptions, "gup"> = isWasmCore(process) || isWasmModule(process) ? { core: process as CoreInput } : (process as Omit<ProcessOptions, "gup">);
  const proc = new Process({ ...opts, core: WasmCore.from(opts.core), gup: type1Kernel(type1.profile ?? DEFAULT_TYPE1_OPTIONS.profile).gup });
  installVfio(proc, platform, type1);
  return proc;
}

/** An open type1 container with one group attached, driven through typed calls. */
export class Type1Handle {
  private constructor(
    readonly proc: Process,
    /** The container fd. */
    readonly fd: number,
    /** The group fd. */
    readonly groupFd: number,
    private readonly scratch: bigint,
  ) {
    this.scratchAt = Number(scratch);
  }

  /** The scratch address as a Number (below 2^47): the process's write and read take it without a BigInt conversion. */
  private readonly scratchAt: number;
  private readonly mapBytes = new Uint8Array(DmaMap.SIZE);
  private readonly mapArgs = new DataView(this.mapBytes.buffer);
  /** The same bytes as u64 words (little-endian platforms): an inlined store per u64 field instead of a DataView call. */
  private readonly mapWords = LITTLE_ENDIAN ? new BigUint64Array(this.mapBytes.buffer) : null;

  /** Opens /dev/vfio/vfio and the group, attaches it and sets the IOMMU type. */
  static open(proc: Process, opts: OpenType1Options = {}): KernelResult<Type1Handle> {
    if (!(proc instanceof Process)) throw new TypeError(`proc must be a Process, got ${proc === null ? "null" : typeof proc}`);
    argObject("opts", opts);
    if (opts.version !== undefined && opts.version !== 1 && opts.version !== 2) throw new RangeError(`opts.version must be 1 or 2, got ${String(opts.version)}`);
    if (opts.groupId !== undefined) argInt("opts.groupId", opts.groupId, 0);
    const m = proc.mmap(undefined, SCRATCH, PROT_READ | PROT_WRITE);
    if (m.ret < 0) return failure(m.errno);
    const scratch = BigInt(m.ret);
    const c = proc.open("/dev/vfio/vfio");
    if (c.ret < 0) return failure(c.errno);
    const id = opts.groupId ?? 0;
    const g = proc.open(`/dev/vfio/${id}`);
    if (g.ret < 0) {
      proc.close(c.ret);
      return failure(g.errno);
    }
    const fdb = new Uint8Array(4);
    new DataView(fdb.buffer).setInt32(0, c.ret, true);
    proc.write(scratch, fdb);
    let r = proc.ioctl(g.ret, VFIO_GROUP_SET_CONTAINER, scratch);
    if (r.ret === 0) r = proc.ioctl(c.ret, VFIO_SET_IOMMU, BigInt(opts.version === 1 ? VFIO_TYPE1_IOMMU : VFIO_TYPE1v2_IOMMU));
    if (r.ret < 0) {
      proc.close(g.ret);
      proc.close(c.ret);
      return failure(r.errno);
    }
    return { ok: true, value: new Type1Handle(proc, c.ret, g.ret, scratch) };
  }

  /** The backend state (for inspection and the in-kernel interface). */
  get iommu(): VfioIommu {
    const f = this.proc.fdget(this.fd) as VfioContainer;
    return f.iommu as VfioIommu;
  }

  private call(cmd: number, bytes: Uint8Array): SyscallResult {
    return toResult(this.callRet(cmd, bytes));
  }

  /** call() as the ioctl's return value (negative errno), no result object in between. */
  private callRet(cmd: number, bytes: Uint8Array): number {
    const w = this.proc.writeRet(this.scratchAt, bytes);
    return w < 0 ? w : this.proc.ioctlRet(this.fd, cmd, this.scratch);
  }

  private readBack(len: number): DataView {
    const b = this.proc.read(this.scratchAt, len) ?? new Uint8Array(len);
    return new DataView(b.buffer, b.byteOffset, b.byteLength);
  }

  /** VFIO_CHECK_EXTENSION: the kernel's answer (0 = not supported). */
  checkExtension(id: number): number {
    argInt("id", id);
    return this.proc.ioctl(this.fd, VFIO_CHECK_EXTENSION, BigInt(id)).ret;
  }

  /** VFIO_IOMMU_MAP_DMA. At least one of read/write (default both). */
  mapDma(req: MapDmaRequest): KernelResult {
    argObject("req", req);
    const read = optBool("req.read", req.read) ?? true;
    const write = optBool("req.write", req.write) ?? true;
    const vaddr = field("req", "vaddr", req.vaddr);
    const iova = field("req", "iova", req.iova);
    const size = field("req", "size", req.size);
    // One struct per handle, rewritten per call (proc.write copies it out at once): a VMM
    // maps thousands of regions, and two allocations per call showed in the profile.
    const s = this.mapArgs;
    s.setUint32(DmaMap.argsz, DmaMap.SIZE, true);
    const flags = (read ? VFIO_DMA_MAP_FLAG_READ : 0) | (write ? VFIO_DMA_MAP_FLAG_WRITE : 0);
    s.setUint32(DmaMap.flags, flags, true);
    const w = this.mapWords;
    if (w !== null) {
      w[DmaMap.vaddr >> 3] = vaddr;
      w[DmaMap.iova >> 3] = iova;
      w[DmaMap.size >> 3] = size;
    } else {
      s.setBigUint64(DmaMap.vaddr, vaddr, true);
      s.setBigUint64(DmaMap.iova, iova, true);
      s.setBigUint64(DmaMap.size, size, true);
    }
    // The struct goes to the scratch page as a VMM's store would (a page the user unmapped
    // or write-protected fails it: -EFAULT). The kernel would copy back exactly these
    // fields, so a container takes them as they are; another file at this fd gets the ioctl.
    const proc = this.proc;
    let r = proc.writeRet(this.scratchAt, this.mapBytes);
    if (r === 0) {
      const f = proc.fdget(this.fd);
      if (f instanceof VfioContainer) {
        const m = this.mapFields;
        m.flags = flags;
        m.vaddr = vaddr;
        m.iova = iova;
        m.size = size;
        // From the struct's 32-bit words, as the ioctl decodes them: converting the BigInts
        // (a compare and a Number() each) cost more than the rest of this function.
        const u = this.mapU32;
        m.vaddrN = exactN(u, DmaMap.vaddr >> 2);
        m.iovaN = exactN(u, DmaMap.iova >> 2);
        m.sizeN = exactN(u, DmaMap.size >> 2);
        r = f.mapDmaCopied(proc, DmaMap.SIZE, m);
      } else {
        r = proc.ioctlRet(this.fd, VFIO_IOMMU_MAP_DMA, this.scratch);
      }
    }
    return r < 0 ? failure(-r) : { ok: true, value: undefined };
  }

  /** mapBytes as 32-bit words, in the platform's byte order (what mapWords stored). */
  private readonly mapU32 = new Uint32Array(this.mapBytes.buffer);

  /** mapDma()'s fields for the container (one object per handle, rewritten per call). */
  private readonly mapFields: DmaMapArgs = { flags: 0, vaddr: 0n, iova: 0n, size: 0n, vaddrN: -1, iovaN: -1, sizeN: -1 };

  /** MAP_DMA with VFIO_DMA_MAP_FLAG_VADDR: give an invalidated mapping its new vaddr. */
  updateVaddr(req: { iova: bigint; vaddr: bigint; size: bigint }): KernelResult {
    argObject("req", req);
    const s = new DataView(new ArrayBuffer(DmaMap.SIZE));
    s.setUint32(DmaMap.argsz, DmaMap.SIZE, true);
    s.setUint32(DmaMap.flags, VFIO_DMA_MAP_FLAG_VADDR, true);
    s.setBigUint64(DmaMap.vaddr, field("req", "vaddr", req.vaddr), true);
    s.setBigUint64(DmaMap.iova, field("req", "iova", req.iova), true);
    s.setBigUint64(DmaMap.size, field("req", "size", req.size), true);
    return result(this.call(VFIO_IOMMU_MAP_DMA, new Uint8Array(s.buffer)), () => undefined);
  }

  private unmapRaw(flags: number, iova: bigint, size: bigint, bitmap?: UserBitmap): KernelResult<{ unmapped: bigint }> {
    if (!bitmap) return this.unmapPlain(flags, iova, size);
    const len = DmaUnmap.SIZE + VfioBitmap.SIZE;
    const s = new DataView(new ArrayBuffer(len));
    s.setUint32(DmaUnmap.argsz, len, true);
    s.setUint32(DmaUnmap.flags, flags, true);
    s.setBigUint64(DmaUnmap.iova, field("req", "iova", iova), true);
    s.setBigUint64(DmaUnmap.size, field("req", "size", size), true);
    s.setBigUint64(DmaUnmap.data + VfioBitmap.pgsize, bitmap.pgsize, true);
    s.setBigUint64(DmaUnmap.data + VfioBitmap.size, bitmap.size, true);
    s.setBigUint64(DmaUnmap.data + VfioBitmap.data, bitmap.data, true);
    const r = this.call(VFIO_IOMMU_UNMAP_DMA, new Uint8Array(s.buffer));
    return result(r, () => ({ unmapped: this.readBack(DmaUnmap.SIZE).getBigUint64(DmaUnmap.size, true) }));
  }

  /**
   * UNMAP_DMA without a bitmap, through one struct per handle (as mapDma): a VMM unmapping
   * region by region makes thousands of these, and five allocations per call showed.
   */
  private unmapPlain(flags: number, iova: bigint, size: bigint): KernelResult<{ unmapped: bigint }> {
    const b = this.unmapBytes;
    const s = this.unmapArgs;
    s.setUint32(DmaUnmap.argsz, DmaUnmap.SIZE, true);
    s.setUint32(DmaUnmap.flags, flags, true);
    s.setBigUint64(DmaUnmap.iova, field("req", "iova", iova), true);
    s.setBigUint64(DmaUnmap.size, field("req", "size", size), true);
    const r = this.callRet(VFIO_IOMMU_UNMAP_DMA, b);
    if (r < 0) return failure(-r);
    // The kernel copied the struct back with size = bytes unmapped.
    if (!this.proc.copyFromUserInto(this.scratch, b, DmaUnmap.SIZE)) b.fill(0);
    return { ok: true, value: { unmapped: s.getBigUint64(DmaUnmap.size, true) } };
  }

  private readonly unmapBytes = new Uint8Array(DmaUnmap.SIZE);
  private readonly unmapArgs = new DataView(this.unmapBytes.buffer);

  /** VFIO_IOMMU_UNMAP_DMA: the bytes unmapped (v2: whole mappings only). */
  unmapDma(req: UnmapDmaRequest): KernelResult<{ unmapped: bigint }> {
    argObject("req", req);
    return this.unmapRaw(optBool("req.all", req.all) ? VFIO_DMA_UNMAP_FLAG_ALL : 0, req.iova, req.size);
  }

  /** UNMAP_DMA with VFIO_DMA_UNMAP_FLAG_VADDR: invalidate the vaddr of the mappings (live update). */
  invalidateVaddr(req: UnmapDmaRequest): KernelResult<{ unmapped: bigint }> {
    argObject("req", req);
    return this.unmapRaw(VFIO_DMA_UNMAP_FLAG_VADDR | (optBool("req.all", req.all) ? VFIO_DMA_UNMAP_FLAG_ALL : 0), req.iova, req.size);
  }

  /** UNMAP_DMA with GET_DIRTY_BITMAP: unmaps and reports the mappings' dirty bits into `bitmap`. */
  unmapDmaGetDirty(req: { iova: bigint; size: bigint }, bitmap: UserBitmap): KernelResult<{ unmapped: bigint }> {
    argObject("req", req);
    return this.unmapRaw(VFIO_DMA_UNMAP_FLAG_GET_DIRTY_BITMAP, req.iova, req.size, checkBitmap("bitmap", bitmap));
  }

  private dirtyRaw(flags: number, get?: { iova: bigint; size: bigint; bitmap: UserBitmap }): KernelResult {
    const len = get ? DirtyBitmap.SIZE + DirtyBitmapGet.SIZE : DirtyBitmap.SIZE;
    const s = new DataView(new ArrayBuffer(len));
    s.setUint32(DirtyBitmap.argsz, len, true);
    s.setUint32(DirtyBitmap.flags, flags, true);
    if (get) {
      const g = DirtyBitmap.data;
      s.setBigUint64(g + DirtyBitmapGet.iova, field("req", "iova", get.iova), true);
      s.setBigUint64(g + DirtyBitmapGet.size, field("req", "size", get.size), true);
      s.setBigUint64(g + DirtyBitmapGet.bitmap + VfioBitmap.pgsize, get.bitmap.pgsize, true);
      s.setBigUint64(g + DirtyBitmapGet.bitmap + VfioBitmap.size, get.bitmap.size, true);
      s.setBigUint64(g + DirtyBitmapGet.bitmap + VfioBitmap.data, get.bitmap.data, true);
    }
    return result(this.call(VFIO_IOMMU_DIRTY_PAGES, new Uint8Array(s.buffer)), () => undefined);
  }

  /** DIRTY_PAGES START. */
  startDirtyTracking(): KernelResult {
    return this.dirtyRaw(VFIO_IOMMU_DIRTY_PAGES_FLAG_START);
  }

  /** DIRTY_PAGES STOP. */
  stopDirtyTracking(): KernelResult {
    return this.dirtyRaw(VFIO_IOMMU_DIRTY_PAGES_FLAG_STOP);
  }

  /** DIRTY_PAGES GET_BITMAP into `bitmap` (user memory of the process; zero it first, as the uAPI says). */
  getDirtyBitmap(req: { iova: bigint; size: bigint }, bitmap: UserBitmap): KernelResult {
    argObject("req", req);
    return this.dirtyRaw(VFIO_IOMMU_DIRTY_PAGES_FLAG_GET_BITMAP, { iova: req.iova, size: req.size, bitmap: checkBitmap("bitmap", bitmap) });
  }

  /** VFIO_IOMMU_GET_INFO with room for every capability, decoded. */
  getInfo(): KernelResult<Type1Info> {
    const size = 4096;
    const hdr = new Uint8Array(size);
    new DataView(hdr.buffer).setUint32(Type1Info.argsz, size, true);
    const r = this.call(VFIO_IOMMU_GET_INFO, hdr);
    return result(r, () => {
      const dv = this.readBack(size);
      const info: Type1Info = { argsz: dv.getUint32(Type1Info.argsz, true), flags: dv.getUint32(Type1Info.flags, true), iovaPgsizes: dv.getBigUint64(Type1Info.iova_pgsizes, true) };
      for (let off = dv.getUint32(Type1Info.cap_offset, true); off && off + CapHeader.SIZE <= size; ) {
        const id = dv.getUint16(off + CapHeader.id, true);
        if (id === VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE) {
          const n = dv.getUint32(off + CapIovaRange.nr_iovas, true);
          info.iovaRanges = Array.from({ length: n }, (_, i) => ({
            start: dv.getBigUint64(off + CapIovaRange.iova_ranges + 16 * i, true),
            end: dv.getBigUint64(off + CapIovaRange.iova_ranges + 16 * i + 8, true),
          }));
        } else if (id === VFIO_IOMMU_TYPE1_INFO_CAP_MIGRATION) {
          info.migration = {
            flags: dv.getUint32(off + CapMigration.flags, true),
            pgsizeBitmap: dv.getBigUint64(off + CapMigration.pgsize_bitmap, true),
            maxDirtyBitmapSize: dv.getBigUint64(off + CapMigration.max_dirty_bitmap_size, true),
          };
        } else if (id === VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL) {
          info.dmaAvail = dv.getUint32(off + CapDmaAvail.avail, true);
        }
        off = dv.getUint32(off + CapHeader.next, true);
      }
      return info;
    });
  }

  /** Closes the group and container fds (the container's mappings go with them). */
  close(): void {
    this.proc.close(this.groupFd);
    this.proc.close(this.fd);
    this.proc.munmap(this.scratch, SCRATCH);
  }
}

export { Errno };
