/**
 * The typed, userspace-side API over a vhost-vdpa device file: builds the exact
 * `struct vhost_msg_v2` bytes and writes them, so every call goes through the same path
 * (and gets the same errno) as a raw write(2). Kernel errors come back as values, never
 * as exceptions.
 */
import { argFunction, argInt, argObject, argU64 } from "../util/args";
import type { FileOps, UserAccess } from "../process/file";
import { Errno, kernelFailure, type KernelResult } from "../uapi/errno";
import { VHOST_IOTLB_MSG_V2, VhostIotlbType, encodeVhostMsgV2 } from "../uapi/vhost";
import type { VhostIotlbMap } from "./iotlb";

/** write(2) of one message: returns bytes written (>= 0) or -errno. */
export type VhostMsgWriter = (msg: Uint8Array) => number;

/**
 * Outcome of one IOTLB message: ok, or the errno write(2) returned and its name (the
 * shared `KernelResult` shape of every typed API).
 */
export type IotlbResult = KernelResult<void>;

/** The model state `lookup` reads (a VhostVdpa). */
export interface IotlbLookupSource {
  iotlb(asid: number): { first(start: bigint, last: bigint): VhostIotlbMap | null } | null;
}

/**
 * A writer that stages each message in the task's memory at `scratch` (72 bytes) and
 * calls `file.write`. If staging faults, the result is -EFAULT, as write(2) from an
 * unwritable buffer would be for the caller.
 */
export function fileWriter(file: FileOps, task: UserAccess, scratch: bigint): VhostMsgWriter {
  argObject("file", file);
  argObject("task", task);
  argU64("scratch", scratch);
  return (msg: Uint8Array): number => {
    if (task.copyToUser(scratch, msg) !== 0) return -Errno.EFAULT;
    return file.write === undefined ? -Errno.EINVAL : file.write(task, scratch, msg.length);
  };
}

/** Arguments of an UPDATE. */
export interface IotlbUpdate {
  iova: bigint;
  size: bigint;
  uaddr: bigint;
  /** VhostAccess.RO / WO / RW. */
  perm: number;
  /** Address space; only sent on the wire (the kernel reads it only with IOTLB_ASID acked). */
  asid?: number;
}

/** Arguments of an INVALIDATE. */
export interface IotlbInvalidate {
  iova: bigint;
  size: bigint;
  asid?: number;
}

/** Arguments of a REMAP (RFC): the new uaddr of the mapping [iova, iova+size-1]. */
export interface IotlbRemap {
  iova: bigint;
  size: bigint;
  uaddr: bigint;
  asid?: number;
}

/** An address-space id argument (u32; default 0). */
function asidOf(asid: unknown): number {
  return asid === undefined ? 0 : argInt("asid", asid, 0, 0xffff_ffff);
}

/** Typed IOTLB operations over one device file. */
export class VhostIotlbApi {
  constructor(
    private readonly writeMsg: VhostMsgWriter,
    private readonly source: IotlbLookupSource | null = null,
  ) {}

  /** VHOST_IOTLB_UPDATE. */
  update(a: IotlbUpdate): IotlbResult {
    argObject("a", a);
    return this.send(VhostIotlbType.UPDATE, asidOf(a.asid), argU64("a.iova", a.iova), argU64("a.size", a.size), argU64("a.uaddr", a.uaddr), argInt("a.perm", a.perm, 0, 0xff));
  }

  /** VHOST_IOTLB_INVALIDATE: removes every mapping overlapping the range, whole. */
  invalidate(a: IotlbInvalidate): IotlbResult {
    argObject("a", a);
    return this.send(VhostIotlbType.INVALIDATE, asidOf(a.asid), argU64("a.iova", a.iova), argU64("a.size", a.size), 0n, 0);
  }

  /** VHOST_IOTLB_REMAP (RFC; perm is always 0 on the wire). */
  remap(a: IotlbRemap): IotlbResult {
    argObject("a", a);
    return this.send(VhostIotlbType.REMAP, asidOf(a.asid), argU64("a.iova", a.iova), argU64("a.size", a.size), argU64("a.uaddr", a.uaddr), 0);
  }

  /** VHOST_IOTLB_BATCH_BEGIN. */
  batchBegin(asid = 0): IotlbResult {
    return this.send(VhostIotlbType.BATCH_BEGIN, asidOf(asid), 0n, 0n, 0n, 0);
  }

  /** VHOST_IOTLB_BATCH_END. */
  batchEnd(asid = 0): IotlbResult {
    return this.send(VhostIotlbType.BATCH_END, asidOf(asid), 0n, 0n, 0n, 0);
  }

  /**
   * BATCH_BEGIN, `fn`, BATCH_END (also when `fn` throws). If BATCH_BEGIN fails, `fn` does
   * not run and that failure is returned; otherwise BATCH_END's result. The results of
   * the messages inside are whatever `fn` did with them.
   */
  batch(fn: () => void, asid = 0): IotlbResult {
    argFunction("fn", fn);
    const begin = this.batchBegin(asid);
    if (!begin.ok) return begin;
    let end: IotlbResult = begin;
    try {
      fn();
    } finally {
      // Ended even when fn throws, so the device is not left batching.
      end = this.batchEnd(asid);
    }
    return end;
  }

  /** Model introspection: the IOTLB entry translating `iova` in `asid`, or null. */
  lookup(iova: bigint, asid = 0): VhostIotlbMap | null {
    argU64("iova", iova);
    asidOf(asid);
    return this.source?.iotlb(asid)?.first(iova, iova) ?? null;
  }

  private send(type: number, asid: number, iova: bigint, size: bigint, uaddr: bigint, perm: number): IotlbResult {
    const bytes = encodeVhostMsgV2({ type: VHOST_IOTLB_MSG_V2, asid, iotlb: { iova, size, uaddr, perm, type } });
    const r = this.writeMsg(bytes);
    return r >= 0 ? { ok: true, value: undefined } : kernelFailure(-r);
  }
}
