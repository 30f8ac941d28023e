import { VhostVdpa, VhostVdpaOptions } from "../../src/vhost/vdpa";
import { encodeVhostMsgV2, VHOST_IOTLB_MSG_V2, VHOST_SET_OWNER } from "../../src/uapi/vhost";
import { FakeMm, Memfd } from "./fake-mm";

/** Where test processes keep guest memory and a scratch page for messages and ioctl args. */
export const GUEST = 0x7f00_0000_0000n;
export const GUEST_SIZE = 1 << 20;
export const SCRATCH = 0x1000n;

export interface Rig {
  dev: VhostVdpa;
  mm: FakeMm;
  memfd: Memfd;
  /** write(fd, msg) of a vhost_msg_v2 staged at SCRATCH: 72 or -errno. */
  send(type: number, iova: bigint, size: bigint, uaddr?: bigint, perm?: number, asid?: number): number;
  /** The IOTLB of `asid` as plain data ([] if the address space does not exist). */
  tree(asid?: number): { start: bigint; last: bigint; addr: bigint; perm: number }[];
}

export function writeMsg(dev: VhostVdpa, mm: FakeMm, bytes: Uint8Array): number {
  expect(mm.copyToUser(SCRATCH, bytes)).toBe(0);
  return dev.write(mm, SCRATCH, bytes.length);
}

export function msgBytes(type: number, iova: bigint, size: bigint, uaddr = 0n, perm = 0, asid = 0): Uint8Array {
  return encodeVhostMsgV2({ type: VHOST_IOTLB_MSG_V2, asid, iotlb: { iova, size, uaddr, perm, type } });
}

export function treeOf(dev: VhostVdpa, asid = 0) {
  return (dev.iotlb(asid)?.entries() ?? []).map((m) => ({ start: m.start, last: m.last, addr: m.addr, perm: m.perm }));
}

/** An open, owned device and a process with 1 MiB of shared guest memory at GUEST. */
export function rig(opts: VhostVdpaOptions = {}): Rig {
  const dev = new VhostVdpa(opts);
  const mm = new FakeMm();
  const memfd = new Memfd(GUEST_SIZE);
  mm.mmap(GUEST, GUEST_SIZE, memfd);
  mm.mmap(SCRATCH, 4096);
  expect(dev.open()).toBe(0);
  expect(dev.ioctl(mm, VHOST_SET_OWNER, 0n)).toBe(0);
  return {
    dev,
    mm,
    memfd,
    send: (type, iova, size, uaddr = 0n, perm = 0, asid = 0) =>
      writeMsg(dev, mm, msgBytes(type, iova, size, uaddr, perm, asid)),
    tree: (asid = 0) => treeOf(dev, asid),
  };
}
