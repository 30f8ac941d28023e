import { Errno } from "../../src/uapi/errno";
import {
  ENOBUFS,
  VHOST_GET_BACKEND_FEATURES,
  VHOST_IOTLB_MSG,
  VHOST_MSG_SIZE,
  VHOST_NEW_OWNER,
  VHOST_SET_BACKEND_FEATURES,
  VHOST_SET_OWNER,
  VHOST_VDPA_GET_AS_NUM,
  VHOST_VDPA_GET_IOVA_RANGE,
  VhostAccess,
  VhostBackendFeature as F,
  VhostIotlbType as T,
  backendFeatureMask as bit,
} from "../../src/uapi/vhost";
import { U64_MAX } from "../../src/vhost/iotlb";
import { FakeMm, Memfd } from "./fake-mm";
import { GUEST, SCRATCH, msgBytes, rig, writeMsg } from "./helpers";

const OK = VHOST_MSG_SIZE;
const EFAULT = -Errno.EFAULT;
const EINVAL = -Errno.EINVAL;
const PAGE = 0x1000n;

function setFeatures(r: ReturnType<typeof rig>, f: bigint): number {
  const b = new Uint8Array(8);
  new DataView(b.buffer).setBigUint64(0, f, true);
  r.mm.copyToUser(SCRATCH + 0x200n, b);
  return r.dev.ioctl(r.mm, VHOST_SET_BACKEND_FEATURES, SCRATCH + 0x200n);
}

function getFeatures(r: ReturnType<typeof rig>): bigint {
  expect(r.dev.ioctl(r.mm, VHOST_GET_BACKEND_FEATURES, SCRATCH + 0x200n)).toBe(0);
  const b = r.mm.copyFromUser(SCRATCH + 0x200n, 8)!;
  return new DataView(b.buffer).getBigUint64(0, true);
}

describe("vhost_chr_write_iter framing", () => {
  test("success returns sizeof(vhost_msg_v2) = 72, also for a longer write", () => {
    const r = rig();
    expect(r.send(T.UPDATE, 0n, PAGE, GUEST, VhostAccess.RW)).toBe(OK);
    const b = new Uint8Array(100);
    b.set(msgBytes(T.UPDATE, PAGE, PAGE, GUEST + PAGE, VhostAccess.RW));
    expect(writeMsg(r.dev, r.mm, b)).toBe(OK);
    expect(r.tree().length).toBe(2);
  });

  test("the v1 header (struct vhost_msg) is accepted; the asid field is never read for it", () => {
    const r = rig();
    const b = msgBytes(T.UPDATE, 0n, PAGE, GUEST, VhostAccess.RW, 7);
    new DataView(b.buffer).setUint32(0, VHOST_IOTLB_MSG, true);
    expect(writeMsg(r.dev, r.mm, b)).toBe(OK);
    expect(r.tree()).toEqual([{ start: 0n, last: PAGE - 1n, addr: GUEST, perm: 3 }]);
  });

  test("short writes, unknown header types and unreadable buffers are EINVAL, not EFAULT", () => {
    const r = rig();
    const m = msgBytes(T.UPDATE, 0n, PAGE, GUEST, VhostAccess.RW);
    r.mm.copyToUser(SCRATCH, m);
    expect(r.dev.write(r.mm, SCRATCH, 3)).toBe(EINVAL);
    expect(r.dev.write(r.mm, SCRATCH, 39)).toBe(EINVAL);
    expect(r.dev.write(r.mm, 0xdead_0000n, 72)).toBe(EINVAL);
    // A buffer that ends (unmapped) right after the 40 bytes the kernel reads is fine.
    r.mm.copyToUser(SCRATCH + 4096n - 40n, m.subarray(0, 40));
    expect(r.dev.write(r.mm, SCRATCH + 4096n - 40n, 72)).toBe(OK);
    r.dev.iotlb(0)!.reset();
    const bad = msgBytes(T.UPDATE, 0n, PAGE, GUEST, VhostAccess.RW);
    new DataView(bad.buffer).setUint32(0, 3, true);
    expect(writeMsg(r.dev, r.mm, bad)).toBe(EINVAL);
    expect(r.tree()).toEqual([]);
  });

  test("UPDATE with size 0 is EINVAL from write_iter itself", () => {
    const r = rig();
    expect(r.send(T.UPDATE, 0n, 0n, GUEST, VhostAccess.RW)).toBe(EINVAL);
    expect(r.dev.iotlb(0)).toBeNull();
  });

  test("a caller that is not the owner gets EFAULT (the handler's EPERM)", () => {
    const r = rig();
    const other = new FakeMm();
    other.mmap(SCRATCH, 4096);
    expect(writeMsg(r.dev, other, msgBytes(T.UPDATE, 0n, PAGE, GUEST, VhostAccess.RW))).toBe(EFAULT);
    expect(r.dev.processIotlbMsg(other, 0, { type: T.UPDATE, iova: 0n, size: PAGE, uaddr: GUEST, perm: 3 })).toBe(
      -Errno.EPERM,
    );
    expect(r.tree()).toEqual([]);
  });

  test("other iotlb message types (MISS, ACCESS_FAIL, 0, 200) are rejected", () => {
    const r = rig();
    expect(r.send(T.UPDATE, 0n, PAGE, GUEST, VhostAccess.RW)).toBe(OK);
    for (const t of [T.MISS, T.ACCESS_FAIL, 0, 200, T.REMAP]) {
      expect(r.send(t, 0n, PAGE, GUEST, 0)).toBe(EFAULT);
      expect(r.dev.processIotlbMsg(r.mm, 0, { type: t, iova: 0n, size: PAGE, uaddr: GUEST, perm: 0 })).toBe(EINVAL);
    }
    expect(r.tree()).toEqual([{ start: 0n, last: PAGE - 1n, addr: GUEST, perm: 3 }]);
  });
});

describe("UPDATE", () => {
  test("any overlap with an existing entry is EEXIST (EFAULT to userspace); the tree is unchanged", () => {
    const r = rig();
    expect(r.send(T.UPDATE, 0x10000n, 0x4000n, GUEST, VhostAccess.RW)).toBe(OK);
    const before = r.tree();
    const calls = r.dev.setMapCalls.length;
    for (const [iova, size] of [
      [0x10000n, 0x4000n],
      [0xf000n, 0x2000n],
      [0x13fffn, 1n],
      [0x11000n, 0x1000n],
      [0n, 0x100000n],
    ] as const) {
      expect(r.send(T.UPDATE, iova, size, GUEST, VhostAccess.RW)).toBe(EFAULT);
      expect(r.dev.processIotlbMsg(r.mm, 0, { type: T.UPDATE, iova, size, uaddr: GUEST, perm: 3 })).toBe(-Errno.EEXIST);
      expect(r.tree()).toEqual(before);
    }
    expect(r.dev.setMapCalls.length).toBe(calls);
    expect(r.send(T.UPDATE, 0x14000n, 0x1000n, GUEST, VhostAccess.RW)).toBe(OK);
    expect(r.send(T.UPDATE, 0xf000n, 0x1000n, GUEST, VhostAccess.RW)).toBe(OK);
  });

  test("the IOVA range of the parent and u64 overflow are checked (EINVAL)", () => {
    const r = rig({ iovaRange: { first: 0x1000n, last: 0xffff_ffffn } });
    const cases: [bigint, bigint, number][] = [
      [0n, 0x1000n, -Errno.EINVAL],
      [0xffff_f000n, 0x2000n, -Errno.EINVAL],
      [0xffff_f000n, 0x1000n, 0],
      [0x1000n, 0x1000n, 0],
    ];
    for (const [iova, size, want] of cases) {
      const before = r.tree();
      expect(r.send(T.UPDATE, iova, size, GUEST, 3)).toBe(want === 0 ? OK : EFAULT);
      if (want !== 0) {
        expect(r.dev.processIotlbMsg(r.mm, 0, { type: T.UPDATE, iova, size, uaddr: GUEST, perm: 3 })).toBe(want);
        expect(r.tree()).toEqual(before);
      }
    }
    const full = rig();
    expect(full.send(T.UPDATE, U64_MAX - 0xfffn, 0x1000n, GUEST, 3)).toBe(OK);
    expect(full.send(T.UPDATE, U64_MAX - 0xfffn + 0x10n, 0x1000n, GUEST, 3)).toBe(EFAULT);
    expect(full.tree()).toEqual([{ start: U64_MAX - 0xfffn, last: U64_MAX, addr: GUEST, perm: 3 }]);
  });

  test("perm is not validated on this path", () => {
    const r = rig();
    expect(r.send(T.UPDATE, 0n, PAGE, GUEST, 0)).toBe(OK);
    expect(r.send(T.UPDATE, PAGE, PAGE, GUEST, 0xff)).toBe(OK);
    expect(r.tree().map((m) => m.perm)).toEqual([0, 0xff]);
  });

  test("use_va: one entry per VMA chunk; non shared-file VMAs are skipped; no VMA is EINVAL and rolls back", () => {
    const r = rig();
    const f2 = new Memfd(0x2000);
    const base = GUEST + 0x1000_0000n; // above every other VMA
    r.mm.mmap(base, 0x2000, f2, 0);
    r.mm.mmap(base + 0x2000n, 0x1000); // anonymous private: skipped
    r.mm.mmap(base + 0x3000n, 0x1000, f2, 0x1000);
    expect(r.send(T.UPDATE, 0x100000n, 0x4000n, base, VhostAccess.RW)).toBe(OK);
    expect(r.tree()).toEqual([
      { start: 0x100000n, last: 0x101fffn, addr: base, perm: 3 },
      { start: 0x103000n, last: 0x103fffn, addr: base + 0x3000n, perm: 3 },
    ]);
    const opaques = r.dev.iotlb(0)!.entries().map((m) => m.opaque as { file: unknown; offset: bigint });
    expect(opaques.map((o) => [o.file === f2, o.offset])).toEqual([
      [true, 0n],
      [true, 0x1000n],
    ]);
    // [base+0x3000, base+0x5000) runs past the last VMA: the first chunk is mapped, then EINVAL undoes it.
    const before = r.tree();
    const calls = r.dev.setMapCalls.length;
    expect(r.send(T.UPDATE, 0x200000n, 0x10000n, base + 0x3000n, VhostAccess.RW)).toBe(EFAULT);
    expect(r.dev.processIotlbMsg(r.mm, 0, { type: T.UPDATE, iova: 0x200000n, size: 0x10000n, uaddr: base + 0x3000n, perm: 3 })).toBe(EINVAL);
    expect(r.tree()).toEqual(before);
    // Each attempt: set_map for the chunk, then set_map for the unmap.
    expect(r.dev.setMapCalls.length).toBe(calls + 4);
  });

  test("use_va: find_vma returns the next VMA above a hole, so a hole before a shared VMA is mapped (kernel quirk)", () => {
    const r = rig();
    const f = new Memfd(0x1000);
    const base = GUEST + 0x1000_0000n;
    r.mm.mmap(base + 0x3000n, 0x1000, f, 0);
    expect(r.send(T.UPDATE, 0n, 0x4000n, base, VhostAccess.RW)).toBe(OK);
    expect(r.tree()).toEqual([{ start: 0n, last: 0x3fffn, addr: base, perm: 3 }]);
  });

  test("the VMA walk always terminates: a find_vma that breaks its contract is EINVAL; uaddr wraps like a u64", () => {
    const r = rig();
    const bad = Object.assign(new FakeMm(), { findVma: () => ({ start: 0n, end: 0n, sharedFile: true }) });
    bad.mmap(SCRATCH, 4096);
    r.dev.release();
    r.dev.open();
    expect(r.dev.ioctl(bad, VHOST_SET_OWNER, 0n)).toBe(0);
    expect(writeMsg(r.dev, bad, msgBytes(T.UPDATE, 0n, PAGE, GUEST, 3))).toBe(EFAULT);
    expect(r.tree()).toEqual([]);
    // A bare UserAccess counts as one shared mapping of the whole space.
    const mm = new FakeMm();
    mm.mmap(SCRATCH, 4096);
    const bare = { copyFromUser: mm.copyFromUser.bind(mm), copyToUser: mm.copyToUser.bind(mm) };
    r.dev.release();
    r.dev.open();
    expect(r.dev.ioctl(bare, VHOST_SET_OWNER, 0n)).toBe(0);
    bare.copyToUser(SCRATCH, msgBytes(T.UPDATE, 0n, 2n * PAGE, U64_MAX - PAGE + 1n, 3));
    expect(r.dev.write(bare, SCRATCH, 72)).toBe(OK);
    expect(r.tree().map((m) => [m.start, m.addr])).toEqual([
      [0n, U64_MAX - PAGE + 1n],
      [PAGE, 0n],
    ]);
  });

  test("a failing set_map removes the entry again and the write fails", () => {
    let fail = false;
    const r = rig({ setMapHook: () => (fail ? -Errno.ENOMEM : 0) });
    expect(r.send(T.UPDATE, 0n, PAGE, GUEST, 3)).toBe(OK);
    fail = true;
    expect(r.send(T.UPDATE, PAGE, PAGE, GUEST + PAGE, 3)).toBe(EFAULT);
    expect(r.tree()).toEqual([{ start: 0n, last: PAGE - 1n, addr: GUEST, perm: 3 }]);
    // The parent still translates only the first page.
    expect(r.dev.parentLookup(PAGE)).toBeNull();
    expect(r.dev.parentLookup(0n)!.addr).toBe(GUEST);
  });
});

describe("INVALIDATE", () => {
  test("removes every overlapping entry whole, never trims; nothing found is success", () => {
    const r = rig();
    for (let i = 0n; i < 4n; i++) expect(r.send(T.UPDATE, i * 0x4000n, 0x4000n, GUEST + i * 0x4000n, 3)).toBe(OK);
    const calls = r.dev.setMapCalls.length;
    expect(r.send(T.INVALIDATE, 0x3fffn, 0x4002n)).toBe(OK);
    expect(r.tree().map((m) => m.start)).toEqual([0xc000n]);
    expect(r.dev.setMapCalls.length).toBe(calls + 1);
    expect(r.dev.setMapCalls.at(-1)!.entries.map((e) => e.start)).toEqual([0xc000n]);
    expect(r.send(T.INVALIDATE, 0x100000n, 0x1000n)).toBe(OK);
    expect(r.tree().map((m) => m.start)).toEqual([0xc000n]);
  });

  test("size 0 is allowed: [iova, iova-1], so iova 0 clears everything", () => {
    const r = rig();
    for (let i = 0n; i < 3n; i++) expect(r.send(T.UPDATE, i * PAGE, PAGE, GUEST, 3)).toBe(OK);
    expect(r.send(T.INVALIDATE, 0x1000n, 0n)).toBe(OK); // [0x1000, 0xfff]: nothing straddles
    expect(r.tree().length).toBe(3);
    expect(r.send(T.INVALIDATE, 0n, 0n)).toBe(OK);
    expect(r.tree()).toEqual([]);
  });

  test("before any UPDATE the address space does not exist: EINVAL", () => {
    const r = rig();
    expect(r.send(T.INVALIDATE, 0n, PAGE)).toBe(EFAULT);
    expect(r.dev.processIotlbMsg(r.mm, 0, { type: T.INVALIDATE, iova: 0n, size: PAGE, uaddr: 0n, perm: 0 })).toBe(EINVAL);
    expect(r.dev.iotlb(0)).toBeNull();
  });
});

describe("batching", () => {
  test("set_map is deferred to BATCH_END and called once with the whole IOTLB", () => {
    const r = rig();
    expect(r.send(T.UPDATE, 0n, PAGE, GUEST, 3)).toBe(OK);
    expect(r.dev.setMapCalls.length).toBe(1);
    expect(r.send(T.BATCH_BEGIN, 0n, 0n)).toBe(OK);
    expect(r.dev.batching).toBe(true);
    expect(r.send(T.UPDATE, PAGE, PAGE, GUEST + PAGE, 3)).toBe(OK);
    expect(r.send(T.UPDATE, 2n * PAGE, PAGE, GUEST + 2n * PAGE, 1)).toBe(OK);
    expect(r.send(T.INVALIDATE, 0n, PAGE)).toBe(OK);
    expect(r.dev.setMapCalls.length).toBe(1);
    // The parent still has the pre-batch view.
    expect(r.dev.parentLookup(0n)!.addr).toBe(GUEST);
    expect(r.dev.parentLookup(PAGE)).toBeNull();
    expect(r.send(T.BATCH_END, 0n, 0n)).toBe(OK);
    expect(r.dev.batching).toBe(false);
    expect(r.dev.setMapCalls.length).toBe(2);
    expect(r.dev.setMapCalls[1]).toEqual({
      asid: 0,
      entries: [
        { start: PAGE, last: 2n * PAGE - 1n, addr: GUEST + PAGE, perm: 3 },
        { start: 2n * PAGE, last: 3n * PAGE - 1n, addr: GUEST + 2n * PAGE, perm: 1 },
      ],
    });
    expect(r.dev.parentLookup(0n)).toBeNull();
    expect(r.dev.parentLookup(PAGE)!.addr).toBe(GUEST + PAGE);
  });

  test("BATCH_END without a batch is a no-op success, but needs an existing address space", () => {
    const r = rig();
    expect(r.send(T.BATCH_END, 0n, 0n)).toBe(EFAULT);
    expect(r.send(T.BATCH_BEGIN, 0n, 0n)).toBe(OK); // allocates the address space
    expect(r.send(T.BATCH_END, 0n, 0n)).toBe(OK);
    expect(r.dev.setMapCalls.length).toBe(1); // the empty batch still ends with set_map
    expect(r.send(T.BATCH_END, 0n, 0n)).toBe(OK);
    expect(r.dev.setMapCalls.length).toBe(1);
  });

  test("BATCH_END ignores a set_map failure", () => {
    const r = rig({ setMapHook: () => -Errno.EIO });
    expect(r.send(T.BATCH_BEGIN, 0n, 0n)).toBe(OK);
    expect(r.send(T.UPDATE, 0n, PAGE, GUEST, 3)).toBe(OK);
    expect(r.send(T.BATCH_END, 0n, 0n)).toBe(OK);
    expect(r.tree().length).toBe(1);
    expect(r.dev.parentLookup(0n)).toBeNull();
  });

  test("address spaces: asid >= nas is EINVAL; asid only read with IOTLB_ASID; a batch pins its asid", () => {
    const r = rig({ nas: 2 });
    // Without IOTLB_ASID acked the asid field is ignored: this goes to asid 0.
    expect(r.send(T.UPDATE, 0n, PAGE, GUEST, 3, 5)).toBe(OK);
    expect(r.tree(0).length).toBe(1);
    expect(setFeatures(r, bit(F.IOTLB_MSG_V2) | bit(F.IOTLB_BATCH) | bit(F.IOTLB_ASID))).toBe(0);
    expect(r.send(T.UPDATE, 0n, PAGE, GUEST, 3, 2)).toBe(EFAULT);
    expect(r.dev.iotlb(2)).toBeNull();
    expect(r.send(T.UPDATE, 0n, PAGE, GUEST, 3, 1)).toBe(OK);
    expect(r.tree(1).length).toBe(1);
    expect(r.send(T.BATCH_BEGIN, 0n, 0n, 0n, 0, 0)).toBe(OK);
    const t0 = r.tree(0);
    const t1 = r.tree(1);
    expect(r.send(T.UPDATE, PAGE, PAGE, GUEST, 3, 1)).toBe(EFAULT);
    expect(r.send(T.INVALIDATE, 0n, PAGE, 0n, 0, 1)).toBe(EFAULT);
    expect(r.send(T.BATCH_BEGIN, 0n, 0n, 0n, 0, 1)).toBe(EFAULT);
    expect(r.send(T.BATCH_END, 0n, 0n, 0n, 0, 1)).toBe(EFAULT);
    expect(r.tree(0)).toEqual(t0);
    expect(r.tree(1)).toEqual(t1);
    expect(r.dev.batching).toBe(true);
    expect(r.send(T.BATCH_END, 0n, 0n, 0n, 0, 0)).toBe(OK);
  });

  test("the asid field needs 8 readable bytes once IOTLB_ASID is acked", () => {
    const r = rig();
    expect(setFeatures(r, bit(F.IOTLB_ASID))).toBe(0);
    const m = msgBytes(T.UPDATE, 0n, PAGE, GUEST, 3);
    r.mm.copyToUser(SCRATCH, m);
    expect(r.dev.write(r.mm, SCRATCH, 7)).toBe(EINVAL);
    expect(r.dev.write(r.mm, SCRATCH, 40)).toBe(OK);
  });
});

describe("ioctls", () => {
  test("GET_BACKEND_FEATURES: the REMAP and NEW_OWNER bits only with their options", () => {
    // 0x17e, as vdpa_sim_net reports on 6.12 (oracle/vhost-vdpa-sim-6.12.out).
    const base =
      bit(F.IOTLB_MSG_V2) | bit(F.IOTLB_BATCH) | bit(F.IOTLB_ASID) | bit(F.SUSPEND) | bit(F.RESUME) | bit(F.IOTLB_PERSIST) | bit(F.ENABLE_AFTER_DRIVER_OK);
    expect(getFeatures(rig())).toBe(base);
    expect(getFeatures(rig({ remap: true }))).toBe(base | bit(F.IOTLB_REMAP));
    expect(getFeatures(rig({ remap: true, newOwner: true }))).toBe(base | bit(F.IOTLB_REMAP) | bit(F.NEW_OWNER));
  });

  test("SET_BACKEND_FEATURES: unknown or unsupported bits are EOPNOTSUPP and change nothing; bad pointer EFAULT", () => {
    const r = rig();
    expect(setFeatures(r, bit(F.IOTLB_MSG_V2) | bit(F.IOTLB_BATCH))).toBe(0);
    expect(r.dev.backendFeatures).toBe(bit(F.IOTLB_MSG_V2) | bit(F.IOTLB_BATCH));
    for (const f of [bit(F.IOTLB_REMAP), bit(F.NEW_OWNER), bit(F.DESC_ASID) | bit(F.IOTLB_ASID), 1n << 40n, 1n]) {
      expect(setFeatures(r, f)).toBe(-Errno.EOPNOTSUPP);
      expect(r.dev.backendFeatures).toBe(bit(F.IOTLB_MSG_V2) | bit(F.IOTLB_BATCH));
    }
    // DESC_ASID without IOTLB_ASID is EINVAL, checked before the parent's descriptor groups.
    expect(setFeatures(r, bit(F.DESC_ASID))).toBe(-Errno.EINVAL);
    expect(r.dev.backendFeatures).toBe(bit(F.IOTLB_MSG_V2) | bit(F.IOTLB_BATCH));
    expect(r.dev.ioctl(r.mm, VHOST_SET_BACKEND_FEATURES, 0x10n)).toBe(EFAULT);
    expect(r.dev.ioctl(r.mm, VHOST_GET_BACKEND_FEATURES, 0x10n)).toBe(EFAULT);
    const on = rig({ remap: true });
    expect(setFeatures(on, bit(F.IOTLB_MSG_V2) | bit(F.IOTLB_BATCH) | bit(F.IOTLB_REMAP))).toBe(0);
  });

  test("GET_IOVA_RANGE and GET_AS_NUM copy out the parent's values", () => {
    const r = rig({ nas: 3, iovaRange: { first: 0x1000n, last: 0xffffn } });
    expect(r.dev.ioctl(r.mm, VHOST_VDPA_GET_IOVA_RANGE, SCRATCH)).toBe(0);
    const b = r.mm.copyFromUser(SCRATCH, 16)!;
    const dv = new DataView(b.buffer);
    expect([dv.getBigUint64(0, true), dv.getBigUint64(8, true)]).toEqual([0x1000n, 0xffffn]);
    expect(r.dev.ioctl(r.mm, VHOST_VDPA_GET_AS_NUM, SCRATCH)).toBe(0);
    expect(new DataView(r.mm.copyFromUser(SCRATCH, 4)!.buffer).getUint32(0, true)).toBe(3);
  });

  test("ownership: SET_OWNER twice is EBUSY; unknown ioctls: EPERM for others, then EFAULT/ENOBUFS/ENOTTY", () => {
    const r = rig();
    expect(r.dev.ioctl(r.mm, VHOST_SET_OWNER, 0n)).toBe(-Errno.EBUSY);
    const other = new FakeMm();
    expect(r.dev.ioctl(other, 0xaf99, 0n)).toBe(-Errno.EPERM);
    expect(r.dev.ioctl(r.mm, 0xaf99, 0n)).toBe(EFAULT);
    r.mm.copyToUser(SCRATCH, new Uint8Array([5, 0, 0, 0]));
    expect(r.dev.ioctl(r.mm, 0xaf99, SCRATCH)).toBe(-ENOBUFS);
    r.mm.copyToUser(SCRATCH, new Uint8Array([1, 0, 0, 0]));
    expect(r.dev.ioctl(r.mm, 0xaf99, SCRATCH)).toBe(-Errno.ENOTTY);
    // Without the option, NEW_OWNER is just another unknown command.
    expect(r.dev.ioctl(other, VHOST_NEW_OWNER, 0n)).toBe(-Errno.EPERM);
  });

  test("NEW_OWNER (RFC): EINVAL when unowned, EBUSY for the owner itself, else the caller takes over", () => {
    const dev = rig({ newOwner: true }).dev;
    const a = new FakeMm();
    const b = new FakeMm();
    dev.release();
    expect(dev.open()).toBe(0);
    expect(dev.ioctl(a, VHOST_NEW_OWNER, 0n)).toBe(EINVAL);
    expect(dev.ioctl(a, VHOST_SET_OWNER, 0n)).toBe(0);
    expect(dev.ioctl(a, VHOST_NEW_OWNER, 0n)).toBe(-Errno.EBUSY);
    expect(dev.ioctl(b, VHOST_NEW_OWNER, 0n)).toBe(0);
    expect(dev.ownerTask).toBe(b);
  });

  test("open is exclusive; release drops mappings, owner and batch state", () => {
    const r = rig();
    expect(r.dev.open()).toBe(-Errno.EBUSY);
    expect(r.send(T.BATCH_BEGIN, 0n, 0n)).toBe(OK);
    expect(r.send(T.UPDATE, 0n, PAGE, GUEST, 3)).toBe(OK);
    r.dev.release();
    expect(r.dev.iotlb(0)).toBeNull();
    expect(r.dev.batching).toBe(false);
    expect(r.dev.ownerTask).toBeNull();
    expect(r.dev.open()).toBe(0);
  });
});

describe("device DMA translates through the parent's copy of the IOTLB", () => {
  test("reads and writes reach the owner's memory; permissions and holes fault", () => {
    const r = rig();
    r.memfd.bytes.set([1, 2, 3, 4], 0x1ffe);
    expect(r.send(T.UPDATE, 0x10000n, 0x2000n, GUEST, VhostAccess.RO)).toBe(OK);
    expect(r.send(T.UPDATE, 0x12000n, 0x1000n, GUEST + 0x2000n, VhostAccess.WO)).toBe(OK);
    expect(r.dev.dmaRead(0x11ffen, 2)).toEqual({ ok: true, value: new Uint8Array([1, 2]) });
    // Crosses into the WO entry: the read faults at its first byte.
    expect(r.dev.dmaRead(0x11ffen, 4)).toEqual({ ok: false, faultIova: 0x12000n });
    expect(r.dev.dmaWrite(0x12000n, new Uint8Array([9, 9]))).toEqual({ ok: true, value: null });
    expect(Array.from(r.memfd.bytes.subarray(0x2000, 0x2002))).toEqual([9, 9]);
    expect(r.dev.dmaWrite(0x10000n, new Uint8Array([1]))).toEqual({ ok: false, faultIova: 0x10000n });
    expect(r.dev.dmaRead(0x13000n, 1)).toEqual({ ok: false, faultIova: 0x13000n });
    expect(r.dev.dmaRead(0x10000n, -1)).toEqual({ ok: false, faultIova: 0x10000n });
    expect(r.dev.dmaRead(0x10000n, 0)).toEqual({ ok: true, value: new Uint8Array(0) });
  });

  test("inside a batch the device keeps the pre-batch translations until BATCH_END", () => {
    const r = rig();
    r.memfd.bytes.set([7], 0);
    r.memfd.bytes.set([8], 0x1000);
    expect(r.send(T.UPDATE, 0n, PAGE, GUEST, VhostAccess.RW)).toBe(OK);
    expect(r.send(T.BATCH_BEGIN, 0n, 0n)).toBe(OK);
    expect(r.send(T.INVALIDATE, 0n, PAGE)).toBe(OK);
    expect(r.send(T.UPDATE, 0n, PAGE, GUEST + PAGE, VhostAccess.RW)).toBe(OK);
    expect(r.dev.dmaRead(0n, 1)).toEqual({ ok: true, value: new Uint8Array([7]) });
    expect(r.send(T.BATCH_END, 0n, 0n)).toBe(OK);
    expect(r.dev.dmaRead(0n, 1)).toEqual({ ok: true, value: new Uint8Array([8]) });
  });
});
