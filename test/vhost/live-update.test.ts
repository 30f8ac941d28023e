/**
 * The live-update flow of the vdpa live update RFC (seed 004): the old owner hands the
 * device to a new process that maps the same memory at new addresses; the new owner takes
 * ownership (VHOST_NEW_OWNER) and re-registers every mapping's uaddr with
 * VHOST_IOTLB_REMAP inside one batch; the device's DMA keeps working.
 */
import { Errno } from "../../src/uapi/errno";
import {
  VHOST_IOTLB_MSG_V2,
  VHOST_NEW_OWNER,
  VHOST_SET_BACKEND_FEATURES,
  VHOST_SET_OWNER,
  VhostAccess,
  VhostBackendFeature as F,
  VhostIotlbType,
  backendFeatureMask as bit,
  encodeVhostMsgV2,
} from "../../src/uapi/vhost";
import { VhostVdpa } from "../../src/vhost/vdpa";
import { VhostIotlbApi, fileWriter } from "../../src/vhost/api";
import { Rng } from "../../src/util/random";
import { FakeMm, Memfd } from "./fake-mm";
import { SCRATCH, treeOf } from "./helpers";

const OLD_BASE = 0x7f00_0000_0000n;
const NEW_BASE = 0x7e80_0000_0000n;
const MIB = 0x10_0000n;
/** Guest RAM split like a VM's: [iova, offset in the memfd, size, perm]. */
const LAYOUT: [bigint, bigint, bigint, number][] = [
  [0x0n, 0x0n, 0x80000n, VhostAccess.RW],
  [0x100000n, 0x80000n, 0x40000n, VhostAccess.RW],
  [0x200000n, 0xc0000n, 0x20000n, VhostAccess.RO],
  [0x40000000n, 0xe0000n, 0x20000n, VhostAccess.WO],
];

function start() {
  const ram = new Memfd(Number(MIB));
  const dev = new VhostVdpa({ remap: true, newOwner: true });
  const oldMm = new FakeMm();
  oldMm.mmap(OLD_BASE, Number(MIB), ram);
  oldMm.mmap(SCRATCH, 4096);
  expect(dev.open()).toBe(0);
  expect(dev.ioctl(oldMm, VHOST_SET_OWNER, 0n)).toBe(0);
  const feats = new Uint8Array(8);
  new DataView(feats.buffer).setBigUint64(
    0,
    bit(F.IOTLB_MSG_V2) | bit(F.IOTLB_BATCH) | bit(F.IOTLB_REMAP) | bit(F.NEW_OWNER),
    true,
  );
  oldMm.copyToUser(SCRATCH + 0x100n, feats);
  expect(dev.ioctl(oldMm, VHOST_SET_BACKEND_FEATURES, SCRATCH + 0x100n)).toBe(0);
  const oldApi = new VhostIotlbApi(fileWriter(dev, oldMm, SCRATCH), dev);
  expect(
    oldApi.batch(() => {
      for (const [iova, off, size, perm] of LAYOUT) {
        expect(oldApi.update({ iova, size, uaddr: OLD_BASE + off, perm })).toEqual({ ok: true });
      }
    }),
  ).toEqual({ ok: true });

  // The device writes a pattern into guest RAM through the IOTLB before the hand-over.
  const rng = new Rng(0x11fe);
  const pattern = rng.fill(new Uint8Array(0x2000));
  expect(dev.dmaWrite(0x100000n + 0x1000n, pattern).ok).toBe(true);

  // The new process maps the same memory object elsewhere; the old one goes away.
  const newMm = new FakeMm();
  newMm.mmap(NEW_BASE, Number(MIB), ram);
  newMm.mmap(SCRATCH, 4096);
  oldMm.munmap(OLD_BASE);
  const newApi = new VhostIotlbApi(fileWriter(dev, newMm, SCRATCH), dev);
  return { ram, dev, oldMm, newMm, oldApi, newApi, pattern };
}

test("new owner REMAPs every mapping in one batch and device DMA keeps working", () => {
  const { ram, dev, newMm, newApi, oldApi, pattern } = start();
  const before = treeOf(dev);
  expect(dev.ioctl(newMm, VHOST_NEW_OWNER, 0n)).toBe(0);
  // The old process can no longer change the IOTLB.
  expect(oldApi.remap({ iova: 0n, size: 0x80000n, uaddr: OLD_BASE })).toEqual({ ok: false, errno: Errno.EFAULT, name: "EFAULT" });
  // In the window before REMAP the device would use the old addresses in the new mm: DMA faults.
  expect(dev.dmaRead(0x100000n + 0x1000n, 16)).toEqual({ ok: false, faultIova: 0x101000n });

  const calls = dev.setMapCalls.length;
  const r = newApi.batch(() => {
    for (const [iova, off, size] of LAYOUT) {
      expect(newApi.remap({ iova, size, uaddr: NEW_BASE + off })).toEqual({ ok: true });
    }
    expect(dev.setMapCalls.length).toBe(calls);
  });
  expect(r).toEqual({ ok: true });
  expect(dev.setMapCalls.length).toBe(calls + 1);
  // Same IOVAs, sizes and permissions; only the user addresses moved.
  expect(treeOf(dev)).toEqual(
    before.map((m, i) => ({ ...m, addr: NEW_BASE + LAYOUT[i][1] })),
  );
  expect(dev.setMapCalls.at(-1)!.entries).toEqual(treeOf(dev));

  // DMA reads what was written before the hand-over, and new writes reach the new owner's view.
  expect(dev.dmaRead(0x101000n, pattern.length)).toEqual({ ok: true, value: pattern });
  expect(dev.dmaWrite(0x200000n, new Uint8Array([1]))).toEqual({ ok: false, faultIova: 0x200000n }); // RO entry
  expect(dev.dmaWrite(0x40000000n + 0x10n, new Uint8Array([0xab, 0xcd])).ok).toBe(true);
  expect(Array.from(newMm.copyFromUser(NEW_BASE + 0xe0010n, 2)!)).toEqual([0xab, 0xcd]);
  expect(Array.from(ram.bytes.subarray(0xe0010, 0xe0012))).toEqual([0xab, 0xcd]);
  expect(newApi.lookup(0x40000000n + 0x10n)!.addr).toBe(NEW_BASE + 0xe0000n);
});

describe("failure cases of the flow (each leaves the tree unchanged)", () => {
  function handedOver() {
    const s = start();
    expect(s.dev.ioctl(s.newMm, VHOST_NEW_OWNER, 0n)).toBe(0);
    return s;
  }

  test.each([
    ["wrong size", 0x100000n, 0x20000n, 0x80000n],
    ["no mapping", 0x300000n, 0x20000n, 0x80000n],
  ] as const)("%s: EFAULT from write", (_n, iova, size, off) => {
    const { dev, newApi } = handedOver();
    const before = treeOf(dev);
    newApi.batch(() => {
      expect(newApi.remap({ iova, size, uaddr: NEW_BASE + off })).toEqual({ ok: false, errno: Errno.EFAULT, name: "EFAULT" });
    });
    expect(treeOf(dev)).toEqual(before);
  });

  test("perm != 0: EFAULT from write (raw message, the typed API always sends 0)", () => {
    const { dev, newMm } = handedOver();
    const before = treeOf(dev);
    const write = fileWriter(dev, newMm, SCRATCH);
    const msg = encodeVhostMsgV2({
      type: VHOST_IOTLB_MSG_V2,
      asid: 0,
      iotlb: { iova: 0n, size: 0x80000n, uaddr: NEW_BASE, perm: VhostAccess.RW, type: VhostIotlbType.REMAP },
    });
    expect(write(msg)).toBe(-Errno.EFAULT);
    expect(treeOf(dev)).toEqual(before);
  });

  test("REMAP outside a batch: the write succeeds and the tree changes, but the device keeps the stale address", () => {
    const { dev, newApi, pattern } = handedOver();
    for (const [iova, off, size] of LAYOUT) {
      expect(newApi.remap({ iova, size, uaddr: NEW_BASE + off })).toEqual({ ok: true });
    }
    expect(newApi.lookup(0x101000n)!.addr).toBe(NEW_BASE + 0x80000n);
    // Each set_map ran before its own addr update: the parent's copy lags one REMAP behind,
    // and the last mapping still points at the old owner's address.
    expect(dev.parentLookup(0x40000000n)!.addr).toBe(OLD_BASE + 0xe0000n);
    expect(dev.parentLookup(0x101000n)!.addr).toBe(NEW_BASE + 0x80000n);
    expect(dev.dmaRead(0x101000n, pattern.length)).toEqual({ ok: true, value: pattern });
    expect(dev.dmaRead(0x40000000n, 1)).toEqual({ ok: false, faultIova: 0x40000000n });
  });

  test("REMAP by a process that is not the owner (before NEW_OWNER): EFAULT", () => {
    const { dev, newApi } = start();
    const before = treeOf(dev);
    expect(newApi.batch(() => undefined)).toEqual({ ok: false, errno: Errno.EFAULT, name: "EFAULT" });
    expect(newApi.remap({ iova: 0n, size: 0x80000n, uaddr: NEW_BASE })).toEqual({ ok: false, errno: Errno.EFAULT, name: "EFAULT" });
    expect(treeOf(dev)).toEqual(before);
  });
});
