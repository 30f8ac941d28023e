/**
 * vfio_iommu_type1_ioctl(): the user-facing half of type1. Copies argument structs from
 * user memory at their uAPI layouts, validates them in the kernel's order, calls the
 * VfioIommu operation and copies results back (only on success, like Linux).
 */
import { Errno } from "../uapi/errno";
import * as uapi from "../uapi/vfio";
import type { Task } from "../process/task";
import type { DmaMapArgs, DmaUnmapArgs, VfioBitmapArgs, VfioIommu } from "./vfio-iommu";
import type { Type1Kernel } from "./options";
import { LITTLE_ENDIAN } from "../util/endian";
// Copied once: under a loader that wraps modules (tsx, esbuild) every read of an imported
// binding is a getter call, and these are read on every MAP_DMA / UNMAP_DMA.
const {
  CapDmaAvail,
  CapHeader,
  CapIovaRange,
  CapMigration,
  DIRTY_BITMAP_SIZE_MAX,
  DirtyBitmap,
  DirtyBitmapGet,
  DmaMap,
  DmaUnmap,
  Type1Info,
  U64_MASK,
  VFIO_CHECK_EXTENSION,
  VFIO_DMA_CC_IOMMU,
  VFIO_DMA_MAP_FLAG_READ,
  VFIO_DMA_MAP_FLAG_VADDR,
  VFIO_DMA_MAP_FLAG_WRITE,
  VFIO_DMA_UNMAP_FLAG_ALL,
  VFIO_DMA_UNMAP_FLAG_GET_DIRTY_BITMAP,
  VFIO_DMA_UNMAP_FLAG_VADDR,
  VFIO_IOMMU_DIRTY_PAGES,
  VFIO_IOMMU_DIRTY_PAGES_FLAG_GET_BITMAP,
  VFIO_IOMMU_DIRTY_PAGES_FLAG_START,
  VFIO_IOMMU_DIRTY_PAGES_FLAG_STOP,
  VFIO_IOMMU_GET_INFO,
  VFIO_IOMMU_INFO_CAPS,
  VFIO_IOMMU_INFO_PGSIZES,
  VFIO_IOMMU_MAP_DMA,
  VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE,
  VFIO_IOMMU_TYPE1_INFO_CAP_MIGRATION,
  VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL,
  VFIO_IOMMU_UNMAP_DMA,
  VFIO_TYPE1_IOMMU,
  VFIO_TYPE1_NESTING_IOMMU,
  VFIO_TYPE1v2_IOMMU,
  VFIO_UNMAP_ALL,
  VFIO_UPDATE_VADDR,
  VfioBitmap,
  accessOk,
  dirtyBitmapBytes,
  ffs64,
  fls64,
} = uapi;

const u64 = (x: bigint): bigint => x & U64_MASK;

/** Little-endian field access on a copied struct. */
class Struct {
  readonly dv: DataView;
  /**
   * With `words` (the reused MAP/UNMAP_DMA structs): the bytes as u64 words, for the
   * aligned u64 fields. A BigUint64Array element load is inlined where a DataView's
   * getBigUint64 is a call, about 30 ns less per field.
   */
  private readonly w64: BigUint64Array | null;
  constructor(
    readonly bytes: Uint8Array,
    words = false,
  ) {
    this.dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    this.w64 = words && LITTLE_ENDIAN && bytes.byteOffset % 8 === 0 ? new BigUint64Array(bytes.buffer, bytes.byteOffset, bytes.byteLength >> 3) : null;
  }
  u32(off: number): number {
    return this.dv.getUint32(off, true);
  }
  u64(off: number): bigint {
    const w = this.w64;
    return w !== null && (off & 7) === 0 ? w[off >> 3] : this.dv.getBigUint64(off, true);
  }
  /** The u64 at `off` as a Number when below 2^53 (exact), else -1: from its two 32-bit words, no BigInt. */
  exactN(off: number): number {
    const hi = this.dv.getUint32(off + 4, true);
    return hi < 0x20_0000 ? hi * 0x1_0000_0000 + this.dv.getUint32(off, true) : -1;
  }
  setU32(off: number, v: number): void {
    this.dv.setUint32(off, v >>> 0, true);
  }
  /** Stores v modulo 2^64 (both stores wrap as BigInt.asUintN(64, v)). */
  setU64(off: number, v: bigint): void {
    const w = this.w64;
    if (w !== null && (off & 7) === 0) w[off >> 3] = v;
    else this.dv.setBigUint64(off, v, true);
  }
  setU16(off: number, v: number): void {
    this.dv.setUint16(off, v, true);
  }
}

function copyStruct(task: Task, addr: bigint, len: number): Struct | null {
  const b = task.copyFromUser(u64(addr), len);
  return b ? new Struct(b) : null;
}

/**
 * One struct buffer for MAP_DMA and UNMAP_DMA, the calls a VMM makes by the thousand: the
 * copy lands here instead of in a new array, and the handler reads every field into locals
 * before calling into the backend (which may call out, e.g. to dma_unmap notifiers that
 * issue ioctls of their own), so nothing is read from it after that.
 */
const argStruct = new Struct(new Uint8Array(DmaMap.SIZE), true);

/**
 * copy_from_user() of `len` (<= DmaMap.SIZE) bytes into argStruct; false for -EFAULT.
 * `addr` is an ioctl's unsigned long argument, already in [0, 2^64) (Process.ioctl checks
 * it), so unlike copyStruct this does not wrap it: that was one BigInt per MAP_DMA.
 */
function copyArgStruct(task: Task, addr: bigint, len: number): boolean {
  if (task.copyFromUserInto) return task.copyFromUserInto(addr, argStruct.bytes, len);
  const b = task.copyFromUser(u64(addr), len);
  if (!b) return false;
  argStruct.bytes.set(b);
  return true;
}

/** The UNMAP_DMA struct copied back to user space (filled just before each copy). */
const unmapOut = new Struct(new Uint8Array(DmaUnmap.SIZE), true);

/** verify_bitmap_size(). */
function verifyBitmapSize(npages: bigint, bitmapSize: bigint): number {
  if (npages === 0n || bitmapSize === 0n || bitmapSize > DIRTY_BITMAP_SIZE_MAX || bitmapSize < dirtyBitmapBytes(npages)) return -Errno.EINVAL;
  return 0;
}

/** `x >> __ffs(pgsize)` as x86 computes it: shifts are taken mod 64, and __ffs(0) is treated as 0. */
function shiftByFfs(x: bigint, pgsize: bigint): bigint {
  const s = pgsize === 0n ? 0 : ffs64(pgsize) & 63;
  return x >> BigInt(s);
}

/** vfio_iommu_type1_check_extension(); `iommu` is null before SET_IOMMU. */
export function vfioIommuType1CheckExtension(iommu: VfioIommu | null, arg: bigint, kernel: Readonly<Type1Kernel>): number {
  switch (arg) {
    case BigInt(VFIO_TYPE1_IOMMU):
    case BigInt(VFIO_TYPE1v2_IOMMU):
    case BigInt(VFIO_UNMAP_ALL):
      return 1;
    case BigInt(VFIO_TYPE1_NESTING_IOMMU):
      // 6.1 and 6.12 still advertise nesting (recorded); SET_IOMMU(6) then fails at attach
      // on a platform without nesting support. 6.13 removed the type.
      return kernel.nestingRemoved ? 0 : 1;
    case BigInt(VFIO_UPDATE_VADDR):
      if (kernel.vaddrOwner) return iommu !== null && iommu.emulatedGroups.length === 0 ? 1 : 0;
      return 1;
    case BigInt(VFIO_DMA_CC_IOMMU):
      return iommu ? iommu.domainsHaveEnforceCacheCoherency() : 0;
    default:
      return 0;
  }
}

/** The capability chain of GET_INFO, built in the kernel's order: MIGRATION, DMA_AVAIL, IOVA_RANGE. */
function buildCaps(iommu: VfioIommu): Uint8Array {
  const pad = iommu.kernel.alignedCaps;
  const caps: Array<{ id: number; body: (s: Struct) => void; size: number }> = [];
  caps.push({
    id: VFIO_IOMMU_TYPE1_INFO_CAP_MIGRATION,
    size: CapMigration.SIZE,
    body: (s) => {
      s.setU32(CapMigration.flags, 0);
      s.setU64(CapMigration.pgsize_bitmap, iommu.pgsize());
      s.setU64(CapMigration.max_dirty_bitmap_size, DIRTY_BITMAP_SIZE_MAX);
    },
  });
  caps.push({ id: VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL, size: CapDmaAvail.SIZE, body: (s) => s.setU32(CapDmaAvail.avail, iommu.dmaAvail) });
  if (iommu.iovaList.length > 0) {
    const list = iommu.iovaList;
    caps.push({
      id: VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE,
      size: CapIovaRange.HEADER_SIZE + CapIovaRange.RANGE_SIZE * list.length,
      body: (s) => {
        s.setU32(CapIovaRange.nr_iovas, list.length);
        list.forEach((r, i) => {
          s.setU64(CapIovaRange.iova_ranges + i * 16, r.start);
          s.setU64(CapIovaRange.iova_ranges + i * 16 + 8, r.end);
        });
      },
    });
  }
  const sizes = caps.map((c) => (pad ? Math.ceil(c.size / 8) * 8 : c.size));
  const total = sizes.reduce((a, b) => a + b, 0);
  const buf = new Struct(new Uint8Array(total));
  let off = 0;
  caps.forEach((c, i) => {
    const s = new Struct(buf.bytes.subarray(off, off + c.size));
    s.setU16(CapHeader.id, c.id);
    s.setU16(CapHeader.version, 1);
    // vfio_info_cap_shift() makes `next` relative to the whole buffer (info header first).
    s.setU32(CapHeader.next, i + 1 < caps.length ? Type1Info.SIZE + off + sizes[i] : 0);
    c.body(s);
    off += sizes[i];
  });
  return buf.bytes;
}

/** vfio_iommu_type1_get_info(). */
function getInfo(iommu: VfioIommu, task: Task, arg: bigint): number {
  let minsz: number = Type1Info.MINSZ;
  const inStruct = copyStruct(task, arg, minsz);
  if (!inStruct) return -Errno.EFAULT;
  const info = new Struct(new Uint8Array(Type1Info.SIZE));
  info.bytes.set(inStruct.bytes);
  let argsz = info.u32(Type1Info.argsz);
  if (argsz < minsz) return -Errno.EINVAL;
  if (iommu.kernel.alignedCaps) minsz = Math.min(argsz, Type1Info.SIZE);
  else if (argsz >= Type1Info.CAPSZ) minsz = Type1Info.CAPSZ;
  info.setU32(Type1Info.cap_offset, 0);

  iommu.lock.lock();
  let flags = VFIO_IOMMU_INFO_PGSIZES;
  info.setU64(Type1Info.iova_pgsizes, iommu.pgsizeBitmap);
  const caps = buildCaps(iommu);
  iommu.lock.unlock();

  if (caps.length) {
    flags |= VFIO_IOMMU_INFO_CAPS;
    if (argsz < Type1Info.SIZE + caps.length) {
      argsz = Type1Info.SIZE + caps.length;
    } else {
      if (task.copyToUser(u64(arg + BigInt(Type1Info.SIZE)), caps)) return -Errno.EFAULT;
      info.setU32(Type1Info.cap_offset, Type1Info.SIZE);
    }
  }
  info.setU32(Type1Info.argsz, argsz);
  info.setU32(Type1Info.flags, flags);
  return task.copyToUser(arg, info.bytes.subarray(0, minsz)) ? -Errno.EFAULT : 0;
}

/** vfio_iommu_type1_map_dma(). */
function mapDma(iommu: VfioIommu, task: Task, arg: bigint): number {
  if (!copyArgStruct(task, arg, DmaMap.SIZE)) return -Errno.EFAULT;
  const s = argStruct;
  const argsz = s.u32(DmaMap.argsz);
  const flags = s.u32(DmaMap.flags);
  // Also checked by vfioIommuType1MapDmaCopied() (for Type1Handle): here so a short struct is not decoded.
  if (argsz < DmaMap.SIZE) return -Errno.EINVAL;
  const m = mapArgs;
  m.flags = flags;
  m.vaddr = s.u64(DmaMap.vaddr);
  m.iova = s.u64(DmaMap.iova);
  m.size = sameSize(s);
  m.vaddrN = s.exactN(DmaMap.vaddr);
  m.iovaN = s.exactN(DmaMap.iova);
  m.sizeN = s.exactN(DmaMap.size);
  return vfioIommuType1MapDmaCopied(iommu, task, argsz, m);
}

/**
 * vfio_iommu_type1_map_dma() after its copy_from_user(): the argsz and flags checks, then
 * vfio_dma_do_map(). `m` holds the struct's fields as copied (with vaddrN/iovaN/sizeN
 * exact or -1). Type1Handle calls this with the fields it has just stored in its scratch
 * page, which the kernel would copy back unchanged (the handle's single thread owns it).
 */
export function vfioIommuType1MapDmaCopied(iommu: VfioIommu, task: Task, argsz: number, m: DmaMapArgs): number {
  let mask = VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE | VFIO_DMA_MAP_FLAG_VADDR;
  if (iommu.opts.msiReservedIovaFlag !== null) mask |= iommu.opts.msiReservedIovaFlag;
  if (argsz < DmaMap.SIZE || (m.flags & ~mask) !== 0) return -Errno.EINVAL;
  return iommu.vfioDmaDoMap(task, m);
}

/**
 * MAP_DMA's size as a bigint, the previous call's object when the bits are the same: a VMM
 * maps many regions of one size, and each dma keeps its size, so one shared BigInt instead
 * of one per mapping for the GC to copy.
 */
function sameSize(s: Struct): bigint {
  const lo = s.u32(DmaMap.size);
  const hi = s.u32(DmaMap.size + 4);
  if (lo !== lastSizeLo || hi !== lastSizeHi) {
    lastSize = s.u64(DmaMap.size);
    lastSizeLo = lo;
    lastSizeHi = hi;
  }
  return lastSize;
}
let lastSize = 0n;
let lastSizeLo = 0;
let lastSizeHi = 0;

/** MAP_DMA's decoded arguments, one object rewritten per call (vfio_dma_do_map() reads them before anything can call out). */
const mapArgs: DmaMapArgs = { flags: 0, vaddr: 0n, iova: 0n, size: 0n, vaddrN: -1, iovaN: -1, sizeN: -1 };

/** vfio_iommu_type1_unmap_dma(). */
function unmapDma(iommu: VfioIommu, task: Task, arg: bigint): number {
  if (!copyArgStruct(task, arg, DmaUnmap.SIZE)) return -Errno.EFAULT;
  const s = argStruct;
  const mask = VFIO_DMA_UNMAP_FLAG_GET_DIRTY_BITMAP | VFIO_DMA_UNMAP_FLAG_ALL | VFIO_DMA_UNMAP_FLAG_VADDR;
  const argsz = s.u32(DmaUnmap.argsz);
  const flags = s.u32(DmaUnmap.flags);
  if (argsz < DmaUnmap.SIZE || (flags & ~mask) !== 0) return -Errno.EINVAL;
  if (flags & VFIO_DMA_UNMAP_FLAG_GET_DIRTY_BITMAP && flags & (VFIO_DMA_UNMAP_FLAG_ALL | VFIO_DMA_UNMAP_FLAG_VADDR)) return -Errno.EINVAL;
  const unmap: DmaUnmapArgs = { flags, iova: s.u64(DmaUnmap.iova), size: s.u64(DmaUnmap.size) };
  let bitmap: VfioBitmapArgs | null = null;
  if (flags & VFIO_DMA_UNMAP_FLAG_GET_DIRTY_BITMAP) {
    if (argsz < DmaUnmap.SIZE + VfioBitmap.SIZE) return -Errno.EINVAL;
    const b = copyStruct(task, arg + BigInt(DmaUnmap.data), VfioBitmap.SIZE);
    if (!b) return -Errno.EFAULT;
    bitmap = { pgsize: b.u64(VfioBitmap.pgsize), size: b.u64(VfioBitmap.size), data: b.u64(VfioBitmap.data) };
    if (!accessOk(bitmap.data, bitmap.size)) return -Errno.EINVAL;
    if (bitmap.pgsize === 0n) return -Errno.EINVAL;
    const r = verifyBitmapSize(shiftByFfs(unmap.size, bitmap.pgsize), bitmap.size);
    if (r) return r;
  }
  const ret = iommu.vfioDmaDoUnmap(task, unmap, bitmap);
  if (ret) return ret;
  // The struct as copied in, with size updated (argStruct may have been reused meanwhile).
  const out = unmapOut;
  out.setU32(DmaUnmap.argsz, argsz);
  out.setU32(DmaUnmap.flags, flags);
  out.setU64(DmaUnmap.iova, unmap.iova);
  out.setU64(DmaUnmap.size, unmap.size);
  return task.copyToUser(arg, out.bytes) ? -Errno.EFAULT : 0;
}

/** vfio_iommu_type1_dirty_pages(). */
function dirtyPages(iommu: VfioIommu, task: Task, arg: bigint): number {
  if (!iommu.v2) return -Errno.EACCES;
  const s = copyStruct(task, arg, DirtyBitmap.SIZE);
  if (!s) return -Errno.EFAULT;
  const mask = VFIO_IOMMU_DIRTY_PAGES_FLAG_START | VFIO_IOMMU_DIRTY_PAGES_FLAG_STOP | VFIO_IOMMU_DIRTY_PAGES_FLAG_GET_BITMAP;
  const argsz = s.u32(DirtyBitmap.argsz);
  const flags = s.u32(DirtyBitmap.flags);
  if (argsz < DirtyBitmap.SIZE || (flags & ~mask) !== 0) return -Errno.EINVAL;
  if (flags === 0 || ffs64(BigInt(flags)) !== fls64(BigInt(flags))) return -Errno.EINVAL;
  if (flags & VFIO_IOMMU_DIRTY_PAGES_FLAG_START) return iommu.dirtyStart();
  if (flags & VFIO_IOMMU_DIRTY_PAGES_FLAG_STOP) return iommu.dirtyStop();
  const dataSize = argsz - DirtyBitmap.SIZE;
  if (dataSize === 0 || dataSize < DirtyBitmapGet.SIZE) return -Errno.EINVAL;
  const g = copyStruct(task, arg + BigInt(DirtyBitmap.data), DirtyBitmapGet.SIZE);
  if (!g) return -Errno.EFAULT;
  const iova = g.u64(DirtyBitmapGet.iova);
  const size = g.u64(DirtyBitmapGet.size);
  const bitmap: VfioBitmapArgs = {
    pgsize: g.u64(DirtyBitmapGet.bitmap + VfioBitmap.pgsize),
    size: g.u64(DirtyBitmapGet.bitmap + VfioBitmap.size),
    data: g.u64(DirtyBitmapGet.bitmap + VfioBitmap.data),
  };
  if (iommu.kernel.overflowChecks) {
    if (size === 0n) return -Errno.EINVAL;
    if (u64(iova + size - 1n) < iova) return -Errno.EOVERFLOW;
  } else if (u64(iova + size) < iova) {
    return -Errno.EINVAL;
  }
  if (!accessOk(bitmap.data, bitmap.size)) return -Errno.EINVAL;
  if (bitmap.pgsize === 0n) return -Errno.EINVAL;
  const r = verifyBitmapSize(shiftByFfs(size, bitmap.pgsize), bitmap.size);
  if (r) return r;
  return iommu.dirtyGetBitmap(task, iova, size, bitmap);
}

/** vfio_iommu_type1_ioctl(): CHECK_EXTENSION, GET_INFO, MAP_DMA, UNMAP_DMA, DIRTY_PAGES; else -ENOTTY. */
export function vfioIommuType1Ioctl(iommu: VfioIommu, task: Task, cmd: number, arg: bigint): number {
  switch (cmd) {
    case VFIO_CHECK_EXTENSION:
      return vfioIommuType1CheckExtension(iommu, arg, iommu.kernel);
    case VFIO_IOMMU_GET_INFO:
      return getInfo(iommu, task, arg);
    case VFIO_IOMMU_MAP_DMA:
      return mapDma(iommu, task, arg);
    case VFIO_IOMMU_UNMAP_DMA:
      return unmapDma(iommu, task, arg);
    case VFIO_IOMMU_DIRTY_PAGES:
      return dirtyPages(iommu, task, arg);
    default:
      return -Errno.ENOTTY;
  }
}
