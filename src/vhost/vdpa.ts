/**
 * A vhost-vdpa character device (drivers/vhost/vdpa.c + the generic parts of
 * drivers/vhost/vhost.c it uses) on a use_va parent with set_map (parent.ts): IOTLB
 * entries hold user virtual addresses of the owner, and the parent receives the whole
 * IOTLB of an address space at once.
 *
 * Optional, off by default: the 2024 "vdpa live update" RFC (VHOST_NEW_OWNER and
 * VHOST_IOTLB_REMAP, S. Sistare, RFC V1), each behind its own option and backend feature
 * bit.
 *
 * Not modelled: PA parents (pinning, RLIMIT_MEMLOCK, physically-contiguous splitting),
 * dma_map/platform-IOMMU parents, virtqueues, device status/reset/suspend, MISS messages
 * on the read side, and vdpa_sim's identity translation before the first set_map (here
 * the device translates nothing until the first set_map).
 */
import type { FileOps, UserAccess } from "../process/file";
import { Errno } from "../uapi/errno";
import {
  VHOST_GET_BACKEND_FEATURES,
  VHOST_IOTLB_MSG,
  VHOST_IOTLB_MSG_SIZE,
  VHOST_IOTLB_MSG_V2,
  VHOST_MSG_SIZE,
  VHOST_NEW_OWNER,
  VHOST_SET_BACKEND_FEATURES,
  VHOST_SET_OWNER,
  VHOST_VDPA_GET_AS_NUM,
  VHOST_VDPA_GET_IOVA_RANGE,
  VhostBackendFeature,
  VhostIotlbMsg,
  VhostIotlbType,
  VhostVdpaIovaRange,
  ENOBUFS,
  backendFeatureMask,
  decodeIotlbMsg,
  encodeIovaRange,
} from "../uapi/vhost";
import { U64_MAX, VhostIotlb, VhostIotlbMap } from "./iotlb";
import { DmaResult, SetMapCall, VdpaSimParent } from "./parent";
import { VdpaMapFile, findVma, mmOf } from "./vma";

/** Options of the modelled device. */
export interface VhostVdpaOptions {
  /** Number of address spaces (`vdpa->nas`); default 2 for vdpa_sim (vdpa_sim_net's), 1 for VDUSE. */
  nas?: number;
  /**
   * Number of virtqueues (`v->nvqs`; only for the errno of unknown ioctls); default 3 for
   * vdpa_sim (vdpa_sim_net: rx, tx, control), 1 for VDUSE (the oracle's device).
   */
  nvqs?: number;
  /**
   * Which parent's optional backend features to report: "vdpa_sim" (default: SUSPEND,
   * RESUME, IOTLB_PERSIST and ENABLE_AFTER_DRIVER_OK, as vdpa_sim_net on Linux 6.12) or
   * "vduse" (none, as on Linux 6.12). Mapping behaviour is the same for both: use_va with
   * set_map (vdpa_sim's default batch_mapping=1).
   */
  parent?: "vdpa_sim" | "vduse";
  /** The parent's get_iova_range; default [0, U64_MAX]. */
  iovaRange?: VhostVdpaIovaRange;
  /** RFC: accept VHOST_NEW_OWNER and advertise VHOST_BACKEND_F_NEW_OWNER (0x9). Default off. */
  newOwner?: boolean;
  /** RFC: accept VHOST_IOTLB_REMAP (type 7) and advertise our VHOST_BACKEND_F_IOTLB_REMAP (0xa). Default off. */
  remap?: boolean;
  /**
   * Failure injection for the parent's set_map: called before the parent copies the
   * IOTLB; a negative return is the parent's error and the copy is not made.
   */
  setMapHook?: (call: SetMapCall) => number;
}

const F = VhostBackendFeature;
const bit = backendFeatureMask;

/** VHOST_VDPA_BACKEND_FEATURES in vdpa.c. */
const VHOST_VDPA_BACKEND_FEATURES = bit(F.IOTLB_MSG_V2) | bit(F.IOTLB_BATCH) | bit(F.IOTLB_ASID);

/**
 * A DeviceOpen-style opener for a process's device table: opens `dev` (EBUSY when it is
 * already open) and returns it as the file.
 */
export function vhostVdpaOpener(dev: VhostVdpa): (task: UserAccess) => FileOps | number {
  return () => {
    const r = dev.open();
    return r < 0 ? r : dev;
  };
}

/** The vhost-vdpa device file: implements FileOps (ioctl, write, release). */
export class VhostVdpa implements FileOps {
  private readonly nas: number;
  private readonly nvqs: number;
  private readonly range: VhostVdpaIovaRange;
  private readonly opts: VhostVdpaOptions;

  /** The address spaces (`v->as`), allocated on first UPDATE/BATCH_BEGIN. */
  private readonly as = new Map<number, VhostIotlb>();
  /** The vdpa parent: its set_map copies are what device DMA translates through. */
  private readonly parent: VdpaSimParent;
  private owner: UserAccess | null = null;
  /** `dev->mm`, taken at SET_OWNER/NEW_OWNER (kept even if the owner later exits). */
  private ownerMm: unknown = null;
  private ackedBackendFeatures = 0n;
  private inBatch = false;
  private batchAsid = 0;
  private opened = false;

  constructor(options: VhostVdpaOptions = {}) {
    this.opts = options;
    this.parent = new VdpaSimParent(options.setMapHook);
    const sim = (options.parent ?? "vdpa_sim") === "vdpa_sim";
    this.nas = options.nas ?? (sim ? 2 : 1);
    this.nvqs = options.nvqs ?? (sim ? 3 : 1);
    this.range = options.iovaRange ?? { first: 0n, last: U64_MAX };
  }

  // ---- open/close -------------------------------------------------------------------

  /** vhost_vdpa_open: 0, or -EBUSY when the device is already open. */
  open(): number {
    if (this.opened) return -Errno.EBUSY;
    this.opened = true;
    return 0;
  }

  /** vhost_vdpa_release: drops every mapping (and the parent's copies), the owner and the batch state. */
  release(): void {
    for (const [asid, iotlb] of this.as) {
      iotlb.reset();
      this.parent.dropAddressSpace(asid);
    }
    this.parent.bindMm(null);
    this.as.clear();
    this.owner = null;
    this.ownerMm = null;
    this.inBatch = false;
    this.ackedBackendFeatures = 0n;
    this.opened = false;
  }

  // ---- introspection for tests and the typed API --------------------------------------

  /** The IOTLB of an address space (model state), or null if it was never allocated. */
  iotlb(asid = 0): VhostIotlb | null {
    return this.as.get(asid) ?? null;
  }

  /** Whether a batch is open (`v->in_batch`). */
  get batching(): boolean {
    return this.inBatch;
  }

  /** The backend features last set with VHOST_SET_BACKEND_FEATURES. */
  get backendFeatures(): bigint {
    return this.ackedBackendFeatures;
  }

  /** The task whose mm owns the device, or null. */
  get ownerTask(): UserAccess | null {
    return this.owner;
  }

  /** Every set_map call the parent received, oldest first. */
  get setMapCalls(): readonly SetMapCall[] {
    return this.parent.setMapCalls;
  }

  /** The parent's copy of the IOTLB of `asid` from the last successful set_map, in tree order. */
  parentEntries(asid = 0): VhostIotlbMap[] {
    return this.parent.entries(asid);
  }

  /** The parent's translation for `iova` in `asid` (its copy from the last set_map), or null. */
  parentLookup(iova: bigint, asid = 0): VhostIotlbMap | null {
    return this.parent.lookup(iova, asid);
  }

  // ---- device DMA ---------------------------------------------------------------------

  /**
   * The device reads `len` bytes at `iova` of address space `asid`, translating through the
   * parent's IOTLB copy and reading the owner's memory (use_va, the mm bound at
   * SET_OWNER/NEW_OWNER). Faults on a missing translation, an entry without read
   * permission, or unreadable user memory.
   */
  dmaRead(iova: bigint, len: number, asid = 0): DmaResult<Uint8Array> {
    return this.parent.dmaRead(iova, len, asid);
  }

  /** The device writes `data` at `iova`; like dmaRead, but needs write permission. */
  dmaWrite(iova: bigint, data: Uint8Array, asid = 0): DmaResult<null> {
    return this.parent.dmaWrite(iova, data, asid);
  }

  // ---- ioctl --------------------------------------------------------------------------

  /** vhost_vdpa_unlocked_ioctl, for the commands modelled. */
  ioctl(task: UserAccess, cmd: number, arg: bigint): number {
    if (cmd === VHOST_SET_BACKEND_FEATURES) return this.setBackendFeatures(task, arg);
    switch (cmd) {
      case VHOST_GET_BACKEND_FEATURES: {
        const b = new Uint8Array(8);
        new DataView(b.buffer).setBigUint64(0, this.offeredBackendFeatures(), true);
        return task.copyToUser(arg, b) === 0 ? 0 : -Errno.EFAULT;
      }
      case VHOST_VDPA_GET_IOVA_RANGE:
        return task.copyToUser(arg, encodeIovaRange(this.range)) === 0 ? 0 : -Errno.EFAULT;
      case VHOST_VDPA_GET_AS_NUM: {
        const b = new Uint8Array(4);
        new DataView(b.buffer).setUint32(0, this.nas, true);
        return task.copyToUser(arg, b) === 0 ? 0 : -Errno.EFAULT;
      }
      case VHOST_NEW_OWNER:
        if (this.opts.newOwner) return this.newOwner(task);
        break;
      case VHOST_SET_OWNER:
        // vhost_dev_set_owner: an owned device cannot be taken (EBUSY).
        if (this.owner !== null) return -Errno.EBUSY;
        this.owner = task;
        this.ownerMm = mmOf(task);
        this.parent.bindMm(task);
        return 0;
    }
    // vhost_dev_ioctl checks ownership, then vhost_vdpa_vring_ioctl reads the vq index
    // before vhost_vring_ioctl rejects the command (-ENOIOCTLCMD, which ioctl(2) reports as ENOTTY).
    if (!this.isOwner(task)) return -Errno.EPERM;
    const idx = task.copyFromUser(arg, 4);
    if (idx === null) return -Errno.EFAULT;
    if (new DataView(idx.buffer, idx.byteOffset, 4).getUint32(0, true) >= this.nvqs) return -ENOBUFS;
    return -Errno.ENOTTY;
  }

  /**
   * The optional backend features the parent supports: vdpa_sim can suspend and resume and
   * has reset_map (a persistent map); VDUSE on 6.12 has none of these.
   */
  private parentBackendFeatures(): bigint {
    return (this.opts.parent ?? "vdpa_sim") === "vdpa_sim" ? bit(F.SUSPEND) | bit(F.RESUME) | bit(F.IOTLB_PERSIST) : 0n;
  }

  /** ops->get_backend_features: vdpa_sim's adds ENABLE_AFTER_DRIVER_OK; VDUSE has none. */
  private parentOwnBackendFeatures(): bigint {
    return (this.opts.parent ?? "vdpa_sim") === "vdpa_sim" ? bit(F.ENABLE_AFTER_DRIVER_OK) : 0n;
  }

  /** What VHOST_GET_BACKEND_FEATURES reports for this parent. */
  offeredBackendFeatures(): bigint {
    let f = VHOST_VDPA_BACKEND_FEATURES | this.parentBackendFeatures() | this.parentOwnBackendFeatures();
    if (this.opts.newOwner) f |= bit(F.NEW_OWNER);
    if (this.opts.remap) f |= bit(F.IOTLB_REMAP);
    return f;
  }

  private setBackendFeatures(task: UserAccess, arg: bigint): number {
    const b = task.copyFromUser(arg, 8);
    if (b === null) return -Errno.EFAULT;
    const features = new DataView(b.buffer, b.byteOffset, 8).getBigUint64(0, true);
    let allowed =
      VHOST_VDPA_BACKEND_FEATURES |
      bit(F.DESC_ASID) |
      bit(F.IOTLB_PERSIST) |
      bit(F.SUSPEND) |
      bit(F.RESUME) |
      bit(F.ENABLE_AFTER_DRIVER_OK);
    if (this.opts.newOwner) allowed |= bit(F.NEW_OWNER);
    if (this.opts.remap) allowed |= bit(F.IOTLB_REMAP);
    if ((features & ~allowed) !== 0n) return -Errno.EOPNOTSUPP;
    // In vhost_vdpa_unlocked_ioctl's order: SUSPEND/RESUME need the parent's ops, DESC_ASID
    // needs IOTLB_ASID (EINVAL) and then virtqueue descriptor groups (neither parent has
    // them), IOTLB_PERSIST a persistent map.
    const parent = this.parentBackendFeatures();
    if ((features & (bit(F.SUSPEND) | bit(F.RESUME)) & ~parent) !== 0n) return -Errno.EOPNOTSUPP;
    if ((features & bit(F.DESC_ASID)) !== 0n) {
      if ((features & bit(F.IOTLB_ASID)) === 0n) return -Errno.EINVAL;
      return -Errno.EOPNOTSUPP;
    }
    if ((features & bit(F.IOTLB_PERSIST) & ~parent) !== 0n) return -Errno.EOPNOTSUPP;
    this.ackedBackendFeatures = features;
    return 0;
  }

  /** RFC VHOST_NEW_OWNER: EINVAL if not owned, EBUSY if the caller already owns it. */
  private newOwner(task: UserAccess): number {
    if (this.owner === null) return -Errno.EINVAL;
    if (this.isOwner(task)) return -Errno.EBUSY;
    // use_va maps pin nothing, so there is no pinned_vm to move (the PA path would check RLIMIT_MEMLOCK).
    this.owner = task;
    this.ownerMm = mmOf(task);
    this.parent.bindMm(task);
    return 0;
  }

  private isOwner(task: UserAccess): boolean {
    return this.owner !== null && this.ownerMm === mmOf(task);
  }

  // ---- write: vhost_chr_write_iter ------------------------------------------------------

  /**
   * vhost_chr_write_iter: reads the header type, the asid (only with IOTLB_ASID acked) and
   * the 32-byte vhost_iotlb_msg; any short read (count too small, unreadable buffer) is
   * EINVAL; UPDATE with size 0 is EINVAL; any handler error becomes EFAULT; success
   * returns 72 whatever was consumed.
   */
  write(task: UserAccess, buf: bigint, count: number): number {
    const read = (off: number, n: number): Uint8Array | null =>
      off + n > count ? null : task.copyFromUser(BigInt.asUintN(64, buf + BigInt(off)), n);
    const t = read(0, 4);
    if (t === null) return -Errno.EINVAL;
    const type = new DataView(t.buffer, t.byteOffset, 4).getUint32(0, true);
    let asid = 0;
    if (type === VHOST_IOTLB_MSG_V2) {
      if ((this.ackedBackendFeatures & bit(F.IOTLB_ASID)) !== 0n) {
        const a = read(4, 4);
        if (a === null) return -Errno.EINVAL;
        asid = new DataView(a.buffer, a.byteOffset, 4).getUint32(0, true);
      }
    } else if (type !== VHOST_IOTLB_MSG) {
      return -Errno.EINVAL;
    }
    const raw = read(8, VHOST_IOTLB_MSG_SIZE);
    if (raw === null) return -Errno.EINVAL;
    const msg = decodeIotlbMsg(raw);
    if (msg.type === VhostIotlbType.UPDATE && msg.size === 0n) return -Errno.EINVAL;
    if (this.processIotlbMsg(task, asid, msg) !== 0) return -Errno.EFAULT;
    return VHOST_MSG_SIZE;
  }

  /**
   * vhost_vdpa_process_iotlb_msg: the handler's own result (0 or -errno), before
   * vhost_chr_write_iter folds it into EFAULT. Exposed so tests can check which rule fired.
   */
  processIotlbMsg(task: UserAccess, asid: number, msg: VhostIotlbMsg): number {
    if (!this.isOwner(task)) return -Errno.EPERM;
    let iotlb: VhostIotlb | null;
    if (msg.type === VhostIotlbType.UPDATE || msg.type === VhostIotlbType.BATCH_BEGIN) {
      iotlb = this.findAllocAs(asid);
      if (iotlb === null) return -Errno.EINVAL;
    } else {
      iotlb = this.as.get(asid) ?? null;
    }
    if ((this.inBatch && this.batchAsid !== asid) || iotlb === null) return -Errno.EINVAL;

    switch (msg.type) {
      case VhostIotlbType.UPDATE:
        return this.processIotlbUpdate(iotlb, asid, msg);
      case VhostIotlbType.INVALIDATE:
        this.unmap(iotlb, asid, msg.iova, msg.size);
        return 0;
      case VhostIotlbType.BATCH_BEGIN:
        this.batchAsid = asid;
        this.inBatch = true;
        return 0;
      case VhostIotlbType.BATCH_END:
        // The kernel ignores set_map's result here.
        if (this.inBatch) this.setMap(asid, iotlb);
        this.inBatch = false;
        return 0;
      case VhostIotlbType.REMAP:
        if (this.opts.remap) return this.processIotlbRemap(iotlb, asid, msg);
        return -Errno.EINVAL;
      default:
        return -Errno.EINVAL;
    }
  }

  /** vhost_vdpa_find_alloc_as: asid >= nas fails. */
  private findAllocAs(asid: number): VhostIotlb | null {
    const found = this.as.get(asid);
    if (found !== undefined) return found;
    if (asid >= this.nas) return null;
    const iotlb = new VhostIotlb(0, 0);
    this.as.set(asid, iotlb);
    return iotlb;
  }

  /** vhost_vdpa_process_iotlb_update for a use_va parent. */
  private processIotlbUpdate(iotlb: VhostIotlb, asid: number, msg: VhostIotlbMsg): number {
    const { iova, size } = msg;
    if (
      iova < this.range.first ||
      size === 0n ||
      iova > U64_MAX - size + 1n ||
      iova + size - 1n > this.range.last
    )
      return -Errno.EINVAL;
    if (iotlb.first(iova, iova + size - 1n) !== null) return -Errno.EEXIST;
    return this.vaMap(iotlb, asid, iova, size, msg.uaddr, msg.perm);
  }

  /**
   * vhost_vdpa_va_map: one entry per VMA chunk of [uaddr, uaddr+size); VMAs that are not
   * shared file mappings are skipped silently; no VMA → EINVAL. On failure the chunks
   * already mapped are unmapped again.
   */
  private vaMap(iotlb: VhostIotlb, asid: number, iova: bigint, size: bigint, uaddr: bigint, perm: number): number {
    const mm = this.owner!;
    let mapIova = iova;
    let ret = 0;
    while (size > 0n) {
      const vma = findVma(mm, uaddr);
      if (vma === null) {
        ret = -Errno.EINVAL;
        break;
      }
      const toEnd = vma.end - uaddr;
      if (toEnd <= 0n) {
        // Only a VmaSource that breaks find_vma's contract (end > addr) gets here.
        ret = -Errno.EINVAL;
        break;
      }
      const mapSize = size < toEnd ? size : toEnd;
      if (vma.sharedFile) {
        const opaque: VdpaMapFile = { file: vma.file ?? null, offset: (vma.fileOffset ?? 0n) + uaddr - vma.start };
        ret = this.map(iotlb, asid, mapIova, mapSize, uaddr, perm, opaque);
        if (ret !== 0) break;
      }
      size -= mapSize;
      uaddr = BigInt.asUintN(64, uaddr + mapSize); // u64, as in the kernel
      mapIova += mapSize;
    }
    if (ret !== 0) this.unmap(iotlb, asid, iova, mapIova - iova);
    return ret;
  }

  /** vhost_vdpa_map for a set_map parent: add the entry, then set_map unless batching. */
  private map(
    iotlb: VhostIotlb,
    asid: number,
    iova: bigint,
    size: bigint,
    addr: bigint,
    perm: number,
    opaque: unknown,
  ): number {
    const last = iova + size - 1n;
    const r = iotlb.addRange(iova, last, addr, perm, opaque);
    if (r !== 0) return r;
    const s = this.inBatch ? 0 : this.setMap(asid, iotlb);
    if (s !== 0) {
      iotlb.delRange(iova, last);
      return s;
    }
    return 0;
  }

  /** vhost_vdpa_unmap: remove every entry overlapping [iova, iova+size-1] (u64 arithmetic), then set_map unless batching. */
  private unmap(iotlb: VhostIotlb, asid: number, iova: bigint, size: bigint): void {
    iotlb.delRange(iova, BigInt.asUintN(64, iova + size - 1n));
    if (!this.inBatch) this.setMap(asid, iotlb);
  }

  /**
   * RFC V1 vhost_vdpa_process_iotlb_remap: perm must be 0 and size non-zero (EINVAL); no
   * overlapping entry → ENOENT; the first one must match [iova, iova+size-1] exactly
   * (EINVAL). Outside a batch set_map runs now, BEFORE map->addr changes (as the RFC is
   * written, so the parent keeps the old address); inside a batch it waits for BATCH_END.
   */
  private processIotlbRemap(iotlb: VhostIotlb, asid: number, msg: VhostIotlbMsg): number {
    if (msg.perm !== 0 || msg.size === 0n) return -Errno.EINVAL;
    const start = msg.iova;
    const last = BigInt.asUintN(64, start + msg.size - 1n);
    const map = iotlb.first(start, last);
    if (map === null) return -Errno.ENOENT;
    if (map.start !== start || map.last !== last) return -Errno.EINVAL;
    const r = this.inBatch ? 0 : this.setMap(asid, iotlb);
    if (r === 0) iotlb.setAddr(map, msg.uaddr);
    return r;
  }

  /** ops->set_map(vdpa, asid, iotlb). */
  private setMap(asid: number, iotlb: VhostIotlb): number {
    return this.parent.setMap(asid, iotlb);
  }
}
