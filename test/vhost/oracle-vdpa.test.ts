/**
 * vhost-vdpa against a real Linux 6.12 (Debian 6.12.111) with a VDUSE parent — use_va
 * with set_map, like the model's parent: test/vhost/oracle-tools/vdpa-cases.c, recorded in
 * test/vhost/oracle/vhost-vdpa-vduse-6.12.out. This test replays the same cases on the
 * model, in the same order and with the same memory layout (a memfd mapping, anonymous
 * memory, a hole below a shared mapping, nothing above), and prints the same lines:
 * results of each write/ioctl, "  set_map" for every call the parent received, and
 * "parent(X)" for what the parent's copy translates X to (VDUSE_IOTLB_GET_FD there,
 * parentLookup here).
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { errnoName } from "../../src/uapi/errno";
import {
  VHOST_GET_BACKEND_FEATURES,
  VHOST_SET_BACKEND_FEATURES,
  VHOST_SET_OWNER,
  VHOST_VDPA_GET_AS_NUM,
  VHOST_VDPA_GET_IOVA_RANGE,
  VhostAccess as A,
  VhostBackendFeature as F,
  VhostIotlbType as T,
  backendFeatureMask as bit,
} from "../../src/uapi/vhost";
import { VhostVdpa } from "../../src/vhost/vdpa";
import type { VdpaMapFile } from "../../src/vhost/vma";
import { FakeMm, Memfd } from "./fake-mm";
import { msgBytes } from "./helpers";

const SCRATCH = 0x1000n;
const MEMFD = 0x7f00_0000_0000n;
const ANON = 0x7f10_0000_0000n;
const HOLE = 0x7f20_0000_0000n;

test("the model prints what Linux 6.12 printed", () => {
  const recorded = readFileSync(join(__dirname, "oracle", "vhost-vdpa-vduse-6.12.out"), "utf8").trim().split("\n").slice(1);

  const out: string[] = [];
  const dev = new VhostVdpa({ parent: "vduse" });
  const mm = new FakeMm();
  const memfd = new Memfd(1 << 20);
  mm.mmap(SCRATCH, 4096);
  mm.mmap(MEMFD, 1 << 20, memfd, 0);
  mm.mmap(ANON, 1 << 16);
  mm.mmap(HOLE + 0x1000n, 0x2000, memfd, 0x10000); // 3 pages at offset 0xf000, first one unmapped
  expect(dev.open()).toBe(0);

  let calls = 0;
  const flushSetMaps = () => {
    for (; calls < dev.setMapCalls.length; calls++) out.push("  set_map");
  };
  const report = (name: string, r: number) => {
    flushSetMaps();
    out.push(r < 0 ? `${name} = -1 ${errnoName(-r)}` : `${name} = ${r}`);
  };
  const send = (task: FakeMm, asid: number, type: number, iova: bigint, size: bigint, uaddr: bigint, perm: number) => {
    const b = msgBytes(type, iova, size, uaddr, perm, asid);
    task.copyToUser(SCRATCH, b);
    return dev.write(task, SCRATCH, b.length);
  };
  const msg = (asid: number, type: number, iova: bigint, size: bigint, uaddr: bigint, perm: number) =>
    send(mm, asid, type, iova, size, uaddr, perm);
  const setFeatures = (f: bigint) => {
    const b = new Uint8Array(8);
    new DataView(b.buffer).setBigUint64(0, f, true);
    mm.copyToUser(SCRATCH + 0x800n, b);
    return dev.ioctl(mm, VHOST_SET_BACKEND_FEATURES, SCRATCH + 0x800n);
  };
  const hex = (x: bigint) => `0x${x.toString(16)}`;
  let IOVA0 = 0n;
  const parent = (name: string, iova: bigint) => {
    flushSetMaps();
    const m = dev.parentLookup(iova);
    if (m === null) out.push(`parent(${name}) = -1 EINVAL`);
    else
      out.push(
        `parent(${name}) = [IOVA0+${hex(m.start - IOVA0)}, IOVA0+${hex(m.last - IOVA0)}] perm ${m.perm} offset ${hex((m.opaque as VdpaMapFile).offset)}`,
      );
  };

  report("set-owner", dev.ioctl(mm, VHOST_SET_OWNER, 0n));
  const r = dev.ioctl(mm, VHOST_GET_BACKEND_FEATURES, SCRATCH + 0x800n);
  out.push(`get-backend-features = ${r} ${hex(new DataView(mm.copyFromUser(SCRATCH + 0x800n, 8)!.buffer).getBigUint64(0, true))}`);
  report("get-iova-range", dev.ioctl(mm, VHOST_VDPA_GET_IOVA_RANGE, SCRATCH + 0x800n));
  const rangeDv = new DataView(mm.copyFromUser(SCRATCH + 0x800n, 16)!.buffer);
  const first = rangeDv.getBigUint64(0, true);
  out.push(`iova-range = ${hex(first)} ${hex(rangeDv.getBigUint64(8, true))}`);
  report("get-as-num", dev.ioctl(mm, VHOST_VDPA_GET_AS_NUM, SCRATCH + 0x800n));
  out.push(`nas = ${new DataView(mm.copyFromUser(SCRATCH + 0x800n, 4)!.buffer).getUint32(0, true)}`);
  IOVA0 = (first + 0xfffffn) & ~0xfffffn;
  report("set-backend-features", setFeatures(bit(F.IOTLB_MSG_V2) | bit(F.IOTLB_BATCH)));

  report("invalidate-before-any-update", msg(0, T.INVALIDATE, IOVA0, 0x1000n, 0n, 0));
  report("batch-end-before-any-update", msg(0, T.BATCH_END, 0n, 0n, 0n, 0));
  report("update-memfd", msg(0, T.UPDATE, IOVA0, 0x4000n, MEMFD, A.RW));
  parent("IOVA0+0x1000", IOVA0 + 0x1000n);
  report("update-overlap-tail", msg(0, T.UPDATE, IOVA0 + 0x3000n, 0x2000n, MEMFD + 0x3000n, A.RW));
  report("update-overlap-inside", msg(0, T.UPDATE, IOVA0 + 0x1000n, 0x1000n, MEMFD, A.RO));
  report("update-anon", msg(0, T.UPDATE, IOVA0 + 0x100000n, 0x1000n, ANON, A.RW));
  report("update-anon-again", msg(0, T.UPDATE, IOVA0 + 0x100000n, 0x1000n, ANON, A.RW));
  parent("IOVA0+0x100000", IOVA0 + 0x100000n);
  report("update-hole-then-shared", msg(0, T.UPDATE, IOVA0 + 0x200000n, 0x3000n, HOLE, A.RO));
  parent("IOVA0+0x200000", IOVA0 + 0x200000n);
  report("update-no-vma", msg(0, T.UPDATE, IOVA0 + 0x300000n, 0x1000n, 0x7ffffffff000n, A.RW));
  parent("IOVA0+0x300000", IOVA0 + 0x300000n);
  report("update-size-0", msg(0, T.UPDATE, IOVA0 + 0x400000n, 0n, MEMFD, A.RW));
  report("update-perm-0", msg(0, T.UPDATE, IOVA0 + 0x500000n, 0x1000n, MEMFD + 0x8000n, 0));
  parent("IOVA0+0x500000", IOVA0 + 0x500000n);
  report("batch-begin", msg(0, T.BATCH_BEGIN, 0n, 0n, 0n, 0));
  report("update-in-batch", msg(0, T.UPDATE, IOVA0 + 0x600000n, 0x2000n, MEMFD + 0x20000n, A.WO));
  report("invalidate-in-batch", msg(0, T.INVALIDATE, IOVA0 + 0x500000n, 0x1000n, 0n, 0));
  parent("IOVA0+0x600000", IOVA0 + 0x600000n);
  parent("IOVA0+0x500000", IOVA0 + 0x500000n);
  report("batch-end", msg(0, T.BATCH_END, 0n, 0n, 0n, 0));
  parent("IOVA0+0x600000", IOVA0 + 0x600000n);
  parent("IOVA0+0x500000", IOVA0 + 0x500000n);
  report("batch-end-again", msg(0, T.BATCH_END, 0n, 0n, 0n, 0));
  report("empty-batch-begin", msg(0, T.BATCH_BEGIN, 0n, 0n, 0n, 0));
  report("empty-batch-end", msg(0, T.BATCH_END, 0n, 0n, 0n, 0));
  report("invalidate-straddling", msg(0, T.INVALIDATE, IOVA0 + 0x3fffn, 2n, 0n, 0));
  parent("IOVA0+0x0", IOVA0);
  report("invalidate-nothing", msg(0, T.INVALIDATE, IOVA0 + 0x700000n, 0x1000n, 0n, 0));
  report("type-miss", msg(0, T.MISS, IOVA0, 0x1000n, MEMFD, 3));
  report("type-7-remap", msg(0, 7, IOVA0 + 0x600000n, 0x2000n, MEMFD, 0));
  report("asid-1-not-negotiated", msg(1, T.UPDATE, IOVA0 + 0x800000n, 0x1000n, MEMFD, A.RW));
  parent("IOVA0+0x800000", IOVA0 + 0x800000n);
  report("set-backend-features-asid", setFeatures(bit(F.IOTLB_MSG_V2) | bit(F.IOTLB_BATCH) | bit(F.IOTLB_ASID)));
  report("asid-1-update", msg(1, T.UPDATE, IOVA0 + 0x900000n, 0x1000n, MEMFD, A.RW));
  report("asid-0-update", msg(0, T.UPDATE, IOVA0 + 0x900000n, 0x1000n, MEMFD, A.RW));
  report("set-backend-features-remap-bit", setFeatures(1n << 0xan));
  const child = new FakeMm(); // fork(): a copy of the mm, so not the owner's
  child.mmap(SCRATCH, 4096);
  report("child-update", send(child, 0, T.UPDATE, IOVA0 + 0xa00000n, 0x1000n, MEMFD, A.RW));
  report("child-set-owner", dev.ioctl(child, VHOST_SET_OWNER, 0n));
  report("set-owner-again", dev.ioctl(mm, VHOST_SET_OWNER, 0n));
  report("invalidate-all", msg(0, T.INVALIDATE, 0n, 0n, 0n, 0));
  parent("IOVA0+0x600000", IOVA0 + 0x600000n);
  report("update-wrap", msg(0, T.UPDATE, 0xfffffffffffff000n, 0x2000n, MEMFD, A.RW));
  report("update-at-top", msg(0, T.UPDATE, 0xfffffffffffff000n, 0x1000n, MEMFD, A.RW));
  report("update-below-top", msg(0, T.UPDATE, 0xffffffffffffe000n, 0x2000n, MEMFD, A.RW));
  report("update-straddle", msg(0, T.UPDATE, IOVA0 + 0xb00000n, 0x2000n, MEMFD, A.RW));
  report("invalidate-size-0-inside", msg(0, T.INVALIDATE, IOVA0 + 0xb01000n, 0n, 0n, 0));
  parent("IOVA0+0xb00000", IOVA0 + 0xb00000n);
  report("update-edge", msg(0, T.UPDATE, IOVA0 + 0xc00000n, 0x1000n, MEMFD, A.RW));
  report("invalidate-size-0-at-edge", msg(0, T.INVALIDATE, IOVA0 + 0xc00000n, 0n, 0n, 0));
  parent("IOVA0+0xc00000", IOVA0 + 0xc00000n);
  // IOTLB_ASID is acked now, so the kernel reads the asid before the 32-byte message.
  const short = msgBytes(T.UPDATE, IOVA0 + 0xd00000n, 0x1000n, MEMFD, A.RW);
  mm.copyToUser(SCRATCH, short);
  report("count-7-with-asid", dev.write(mm, SCRATCH, 7));
  report("count-39-with-asid", dev.write(mm, SCRATCH, 39));
  report("count-40-with-asid", dev.write(mm, SCRATCH, 40));
  flushSetMaps();

  expect(out).toEqual(recorded);
});
