/**
 * vhost-vdpa against real Linux 6.12, replayed on the model by a simulated process (its
 * memfd, anonymous memory, file table and write(2)), which must print the same lines:
 *
 * - VDUSE parent (Debian 6.12.111, use_va with set_map like vdpa_sim):
 *   test/vhost/oracle-tools/vdpa-cases.c, recorded in oracle/vhost-vdpa-vduse-6.12.out.
 *   Its daemon also prints "  set_map" for every call the parent received and
 *   "parent(X)" for what the parent's copy translates X to (VDUSE_IOTLB_GET_FD there,
 *   parentLookup here).
 * - vdpa_sim_net, the model's default parent (the 6.12.117 test kernel):
 *   oracle-tools/vdpa-sim-cases.c, recorded in oracle/vhost-vdpa-sim-6.12.out. No daemon,
 *   so results only; plus two address spaces, three virtqueues, vdpa_sim's backend
 *   features, VHOST_NEW_OWNER and the RFC bits refused (they are not in Linux), MAP_PRIVATE
 *   file memory skipped, and the device released by the last close.
 *
 * Same cases in the same order, same memory layout (a 1 MiB memfd mapping, anonymous
 * memory, a hole below a shared mapping, nothing above); addresses print relative to
 * named bases, so the model may place them elsewhere.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { MAP_PRIVATE, MAP_SHARED, PROT_READ, PROT_WRITE, Process, SyscallResult } from "../../src/process";
import { WasmCore } from "../../src/wasm/core";
import { errnoName } from "../../src/uapi/errno";
import {
  VHOST_GET_BACKEND_FEATURES,
  VHOST_NEW_OWNER,
  VHOST_SET_BACKEND_FEATURES,
  VHOST_SET_OWNER,
  VHOST_VDPA_GET_AS_NUM,
  VHOST_VDPA_GET_IOVA_RANGE,
  VhostAccess as A,
  VhostBackendFeature as F,
  VhostIotlbType as T,
  backendFeatureMask as bit,
} from "../../src/uapi/vhost";
import { VhostVdpa, vhostVdpaOpener } from "../../src/vhost/vdpa";
import type { VdpaMapFile } from "../../src/vhost/vma";
import { msgBytes } from "./helpers";

const DEV = "/dev/vhost-vdpa-0";
const SCRATCH = 0x10000n;
const MEMFD = 0x7f00_0000_0000n;
const ANON = 0x7f10_0000_0000n;
const HOLE = 0x7f20_0000_0000n;
const PRIV = 0x7f30_0000_0000n;
const PAST = 0x7f40_0000_0000n;
const RW = PROT_READ | PROT_WRITE;

function recording(name: string): string[] {
  return readFileSync(join(__dirname, "oracle", name), "utf8").trim().split("\n").slice(1);
}

/** Runs the cases of vdpa-cases.c (`vduse`) or vdpa-sim-cases.c on the model; returns the lines. */
function replay(parentKind: "vduse" | "vdpa_sim"): string[] {
  const vduse = parentKind === "vduse";
  const out: string[] = [];
  const dev = new VhostVdpa(vduse ? { parent: "vduse" } : {});
  const core = new WasmCore();
  const p = new Process({ core });
  p.registerDevice(DEV, vhostVdpaOpener(dev));
  const ok = (r: SyscallResult) => expect(r.errno).toBe(0);
  ok(p.mmap(SCRATCH, 4096));
  const mfd = p.memfdCreate("guest").ret;
  ok(p.ftruncate(mfd, 1 << 20));
  ok(p.mmapFd(MEMFD, 1 << 20, RW, MAP_SHARED, mfd, 0));
  ok(p.mmap(ANON, 1 << 16));
  ok(p.mmapFd(HOLE, 0x3000, RW, MAP_SHARED, mfd, 0xf000)); // a hole of one page below a 2-page shared mapping
  ok(p.munmap(HOLE, 0x1000));
  let vfd = p.open(DEV).ret;
  expect(vfd).toBeGreaterThan(0);

  let calls = 0;
  const flushSetMaps = () => {
    if (!vduse) return;
    for (; calls < dev.setMapCalls.length; calls++) out.push("  set_map");
  };
  const line = (name: string, r: SyscallResult) => {
    flushSetMaps();
    out.push(r.ret < 0 ? `${name} = -1 ${errnoName(r.errno)}` : `${name} = ${r.ret}`);
  };
  /** write(vfd, &msg, count) from the task's own memory. */
  const send = (task: Process, fd: number, asid: number, type: number, iova: bigint, size: bigint, uaddr: bigint, perm: number, count?: number) => {
    const b = msgBytes(type, iova, size, uaddr, perm, asid);
    ok(task.write(SCRATCH, b));
    return task.writeFd(fd, SCRATCH, count ?? b.length);
  };
  const report = (name: string, asid: number, type: number, iova: bigint, size: bigint, uaddr: bigint, perm: number) =>
    line(name, send(p, vfd, asid, type, iova, size, uaddr, perm));
  const setFeatures = (f: bigint) => {
    const b = new Uint8Array(8);
    new DataView(b.buffer).setBigUint64(0, f, true);
    ok(p.write(SCRATCH + 0x800n, b));
    return p.ioctl(vfd, VHOST_SET_BACKEND_FEATURES, SCRATCH + 0x800n);
  };
  const hex = (x: bigint) => `0x${x.toString(16)}`;
  let IOVA0 = 0n;
  const parent = (name: string, iova: bigint) => {
    if (!vduse) return;
    flushSetMaps();
    const m = dev.parentLookup(iova);
    if (m === null) out.push(`parent(${name}) = -1 EINVAL`);
    else
      out.push(
        `parent(${name}) = [IOVA0+${hex(m.start - IOVA0)}, IOVA0+${hex(m.last - IOVA0)}] perm ${m.perm} offset ${hex((m.opaque as VdpaMapFile).offset)}`,
      );
  };
  const u64At = (a: bigint) => new DataView(p.read(a, 8)!.buffer).getBigUint64(0, true);

  line("set-owner", p.ioctl(vfd, VHOST_SET_OWNER));
  const r = p.ioctl(vfd, VHOST_GET_BACKEND_FEATURES, SCRATCH + 0x800n);
  out.push(`get-backend-features = ${r.ret} ${hex(u64At(SCRATCH + 0x800n))}`);
  line("get-iova-range", p.ioctl(vfd, VHOST_VDPA_GET_IOVA_RANGE, SCRATCH + 0x800n));
  const first = u64At(SCRATCH + 0x800n);
  out.push(`iova-range = ${hex(first)} ${hex(u64At(SCRATCH + 0x808n))}`);
  line("get-as-num", p.ioctl(vfd, VHOST_VDPA_GET_AS_NUM, SCRATCH + 0x800n));
  out.push(`nas = ${new DataView(p.read(SCRATCH + 0x800n, 4)!.buffer).getUint32(0, true)}`);
  IOVA0 = (first + 0xfffffn) & ~0xfffffn;
  line("set-backend-features", setFeatures(bit(F.IOTLB_MSG_V2) | bit(F.IOTLB_BATCH)));

  report("invalidate-before-any-update", 0, T.INVALIDATE, IOVA0, 0x1000n, 0n, 0);
  report("batch-end-before-any-update", 0, T.BATCH_END, 0n, 0n, 0n, 0);
  report("update-memfd", 0, T.UPDATE, IOVA0, 0x4000n, MEMFD, A.RW);
  parent("IOVA0+0x1000", IOVA0 + 0x1000n);
  report("update-overlap-tail", 0, T.UPDATE, IOVA0 + 0x3000n, 0x2000n, MEMFD + 0x3000n, A.RW);
  report("update-overlap-inside", 0, T.UPDATE, IOVA0 + 0x1000n, 0x1000n, MEMFD, A.RO);
  report("update-anon", 0, T.UPDATE, IOVA0 + 0x100000n, 0x1000n, ANON, A.RW);
  report("update-anon-again", 0, T.UPDATE, IOVA0 + 0x100000n, 0x1000n, ANON, A.RW);
  parent("IOVA0+0x100000", IOVA0 + 0x100000n);
  report("update-hole-then-shared", 0, T.UPDATE, IOVA0 + 0x200000n, 0x3000n, HOLE, A.RO);
  parent("IOVA0+0x200000", IOVA0 + 0x200000n);
  report("update-no-vma", 0, T.UPDATE, IOVA0 + 0x300000n, 0x1000n, 0x7ffffffff000n, A.RW);
  parent("IOVA0+0x300000", IOVA0 + 0x300000n);
  report("update-size-0", 0, T.UPDATE, IOVA0 + 0x400000n, 0n, MEMFD, A.RW);
  report("update-perm-0", 0, T.UPDATE, IOVA0 + 0x500000n, 0x1000n, MEMFD + 0x8000n, 0);
  parent("IOVA0+0x500000", IOVA0 + 0x500000n);
  report("batch-begin", 0, T.BATCH_BEGIN, 0n, 0n, 0n, 0);
  report("update-in-batch", 0, T.UPDATE, IOVA0 + 0x600000n, 0x2000n, MEMFD + 0x20000n, A.WO);
  report("invalidate-in-batch", 0, T.INVALIDATE, IOVA0 + 0x500000n, 0x1000n, 0n, 0);
  parent("IOVA0+0x600000", IOVA0 + 0x600000n);
  parent("IOVA0+0x500000", IOVA0 + 0x500000n);
  report("batch-end", 0, T.BATCH_END, 0n, 0n, 0n, 0);
  parent("IOVA0+0x600000", IOVA0 + 0x600000n);
  parent("IOVA0+0x500000", IOVA0 + 0x500000n);
  report("batch-end-again", 0, T.BATCH_END, 0n, 0n, 0n, 0);
  report("empty-batch-begin", 0, T.BATCH_BEGIN, 0n, 0n, 0n, 0);
  report("empty-batch-end", 0, T.BATCH_END, 0n, 0n, 0n, 0);
  report("invalidate-straddling", 0, T.INVALIDATE, IOVA0 + 0x3fffn, 2n, 0n, 0);
  parent("IOVA0+0x0", IOVA0);
  report("invalidate-nothing", 0, T.INVALIDATE, IOVA0 + 0x700000n, 0x1000n, 0n, 0);
  report("type-miss", 0, T.MISS, IOVA0, 0x1000n, MEMFD, 3);
  report("type-7-remap", 0, 7, IOVA0 + 0x600000n, 0x2000n, MEMFD, 0);
  report("asid-1-not-negotiated", 1, T.UPDATE, IOVA0 + 0x800000n, 0x1000n, MEMFD, A.RW);
  parent("IOVA0+0x800000", IOVA0 + 0x800000n);
  line("set-backend-features-asid", setFeatures(bit(F.IOTLB_MSG_V2) | bit(F.IOTLB_BATCH) | bit(F.IOTLB_ASID)));
  report("asid-1-update", 1, T.UPDATE, IOVA0 + 0x900000n, 0x1000n, MEMFD, A.RW);
  report("asid-0-update", 0, T.UPDATE, IOVA0 + 0x900000n, 0x1000n, MEMFD, A.RW);
  line("set-backend-features-remap-bit", setFeatures(1n << 0xan));
  // fork(): the child has a copy of the mm (so it is not the owner) and the same open files.
  const fork = () => {
    const child = new Process({ core });
    ok(child.mmap(SCRATCH, 4096));
    return { child, fd: p.sendFd(vfd, child).ret };
  };
  {
    const { child, fd } = fork();
    line("child-update", send(child, fd, 0, T.UPDATE, IOVA0 + 0xa00000n, 0x1000n, MEMFD, A.RW));
    line("child-set-owner", child.ioctl(fd, VHOST_SET_OWNER));
    child.exit();
  }
  line("set-owner-again", p.ioctl(vfd, VHOST_SET_OWNER));
  report("invalidate-all", 0, T.INVALIDATE, 0n, 0n, 0n, 0);
  parent("IOVA0+0x600000", IOVA0 + 0x600000n);
  report("update-wrap", 0, T.UPDATE, 0xfffffffffffff000n, 0x2000n, MEMFD, A.RW);
  report("update-at-top", 0, T.UPDATE, 0xfffffffffffff000n, 0x1000n, MEMFD, A.RW);
  report("update-below-top", 0, T.UPDATE, 0xffffffffffffe000n, 0x2000n, MEMFD, A.RW);
  report("update-straddle", 0, T.UPDATE, IOVA0 + 0xb00000n, 0x2000n, MEMFD, A.RW);
  report("invalidate-size-0-inside", 0, T.INVALIDATE, IOVA0 + 0xb01000n, 0n, 0n, 0);
  parent("IOVA0+0xb00000", IOVA0 + 0xb00000n);
  report("update-edge", 0, T.UPDATE, IOVA0 + 0xc00000n, 0x1000n, MEMFD, A.RW);
  report("invalidate-size-0-at-edge", 0, T.INVALIDATE, IOVA0 + 0xc00000n, 0n, 0n, 0);
  parent("IOVA0+0xc00000", IOVA0 + 0xc00000n);
  // IOTLB_ASID is acked now, so the kernel reads the asid before the 32-byte message.
  for (const count of [7, 39, 40]) {
    line(`count-${count}-with-asid`, send(p, vfd, 0, T.UPDATE, IOVA0 + 0xd00000n, 0x1000n, MEMFD, A.RW, count));
  }

  if (!vduse) {
    report("asid-2-update", 2, T.UPDATE, IOVA0 + 0xe00000n, 0x1000n, MEMFD, A.RW);
    report("asid-1-batch-begin", 1, T.BATCH_BEGIN, 0n, 0n, 0n, 0);
    report("asid-0-update-in-asid-1-batch", 0, T.UPDATE, IOVA0 + 0xe00000n, 0x1000n, MEMFD, A.RW);
    report("asid-1-update-in-batch", 1, T.UPDATE, IOVA0 + 0xe00000n, 0x1000n, MEMFD + 0x1000n, A.RW);
    report("asid-1-update-overlap", 1, T.UPDATE, IOVA0 + 0x900000n, 0x1000n, MEMFD, A.RW);
    report("asid-1-batch-end", 1, T.BATCH_END, 0n, 0n, 0n, 0);
    report("asid-1-invalidate-all", 1, T.INVALIDATE, 0n, 0n, 0n, 0);
    report("asid-1-update-again", 1, T.UPDATE, IOVA0 + 0x900000n, 0x1000n, MEMFD, A.RW);
    line("set-backend-features-sim", setFeatures(0x17en));
    line("set-backend-features-desc-asid", setFeatures(bit(F.IOTLB_MSG_V2) | bit(F.DESC_ASID)));
    line("set-backend-features-desc-asid-with-asid", setFeatures(bit(F.IOTLB_MSG_V2) | bit(F.DESC_ASID) | bit(F.IOTLB_ASID)));
    line("set-backend-features-new-owner-bit", setFeatures(1n << 0x9n));
    const idx = (n: number) => {
      const b = new Uint8Array(4);
      new DataView(b.buffer).setUint32(0, n, true);
      ok(p.write(SCRATCH + 0x900n, b));
      return SCRATCH + 0x900n;
    };
    line("new-owner-arg-null", p.ioctl(vfd, VHOST_NEW_OWNER, 0n));
    line("new-owner-idx-0", p.ioctl(vfd, VHOST_NEW_OWNER, idx(0)));
    line("new-owner-idx-2", p.ioctl(vfd, VHOST_NEW_OWNER, idx(2)));
    line("new-owner-idx-3", p.ioctl(vfd, VHOST_NEW_OWNER, idx(3)));
    {
      const { child, fd } = fork();
      line("child-new-owner", child.ioctl(fd, VHOST_NEW_OWNER, 0n));
      child.exit();
    }
    ok(p.mmapFd(PRIV, 1 << 16, RW, MAP_PRIVATE, mfd, 0));
    ok(p.mmapFd(PAST, 0x2000, RW, MAP_SHARED, mfd, 1 << 20));
    report("update-private-file", 0, T.UPDATE, IOVA0 + 0x100000n, 0x1000n, PRIV, A.RW);
    report("update-private-file-again", 0, T.UPDATE, IOVA0 + 0x100000n, 0x1000n, PRIV, A.RW);
    report("update-past-eof", 0, T.UPDATE, IOVA0 + 0x1000000n, 0x2000n, PAST, A.RW);
    report("update-past-eof-overlap", 0, T.UPDATE, IOVA0 + 0x1001000n, 0x1000n, MEMFD, A.RW);
    line("close", p.close(vfd));
    const re = p.open(DEV);
    line("reopen", re.ret < 0 ? re : { ret: 0, errno: 0 });
    vfd = re.ret;
    report("reopen-update-not-owner", 0, T.UPDATE, IOVA0, 0x1000n, MEMFD, A.RW);
    line("reopen-set-owner", p.ioctl(vfd, VHOST_SET_OWNER));
    report("reopen-invalidate", 0, T.INVALIDATE, IOVA0, 0x1000n, 0n, 0);
    report("reopen-update", 0, T.UPDATE, IOVA0 + 0x1000000n, 0x1000n, MEMFD, A.RW);
    report("reopen-asid-1-not-negotiated", 1, T.INVALIDATE, IOVA0 + 0x1000000n, 0x1000n, 0n, 0);
    report("reopen-update-again", 0, T.UPDATE, IOVA0 + 0x1000000n, 0x1000n, MEMFD, A.RW);
  }
  flushSetMaps();
  return out;
}

/**
 * vdpa-sim-dma.c on the model: the same IOTLB messages, and for each probe the device does
 * what vdpa_sim_net's loopback does with one packet: read the TX buffer and write it into
 * the RX buffer, both through its IOTLB (the parent's copy). Where the marker landed is
 * found by scanning the memfd, as the C program does.
 */
function replayDma(): string[] {
  const out: string[] = [];
  const dev = new VhostVdpa();
  const core = new WasmCore();
  const p = new Process({ core });
  p.registerDevice(DEV, vhostVdpaOpener(dev));
  const ok = (r: SyscallResult) => expect(r.errno).toBe(0);
  ok(p.mmap(SCRATCH, 4096));
  const mfd = p.memfdCreate("guest").ret;
  ok(p.ftruncate(mfd, 1 << 20));
  const MEM = BigInt(p.mmapFd(undefined, 1 << 20, RW, MAP_SHARED, mfd, 0).ret);
  const MEM2 = BigInt(p.mmapFd(undefined, 1 << 20, RW, MAP_SHARED, mfd, 0).ret);
  const PRIV_MAP = BigInt(p.mmapFd(undefined, 0x10000, RW, MAP_PRIVATE, mfd, 0x20000).ret);
  const vfd = p.open(DEV).ret;
  const line = (name: string, r: SyscallResult) => out.push(r.ret < 0 ? `${name} = -1 E${r.errno}` : `${name} = ${r.ret}`);
  const step = (name: string, type: number, iova: bigint, size: bigint, uaddr: bigint, perm: number) => {
    ok(p.write(SCRATCH, msgBytes(type, iova, size, uaddr, perm)));
    line(name, p.writeFd(vfd, SCRATCH, 72));
  };
  line("set-owner", p.ioctl(vfd, VHOST_SET_OWNER));
  const f = new Uint8Array(8);
  new DataView(f.buffer).setBigUint64(0, bit(F.IOTLB_MSG_V2) | bit(F.IOTLB_BATCH), true);
  ok(p.write(SCRATCH + 0x800n, f));
  line("set-backend-features", p.ioctl(vfd, VHOST_SET_BACKEND_FEATURES, SCRATCH + 0x800n));
  step("update-rings", T.UPDATE, 0n, 0x10000n, MEM, A.RW);
  let probes = 0;
  const probe = (name: string, rxIova: bigint) => {
    const marker = Uint8Array.of(0xd1, 0x5a, 0x11, 0x0c, 0x50, 0x52, 0x42, 0x30 + probes++);
    const txOff = 0x8000 + (probes % 4) * 0x100;
    const pkt = new Uint8Array(12 + 64);
    pkt.fill(0xff, 12, 18);
    pkt.set(marker, 12 + 16);
    ok(p.write(MEM + BigInt(txOff), pkt));
    const read = dev.dmaRead(BigInt(txOff), pkt.length);
    const written = read.ok ? dev.dmaWrite(rxIova, read.value) : null;
    const ram = p.memfd(mfd)!.readAt(0, 1 << 20);
    let at = -1;
    for (let off = 0x10000; off + 8 <= ram.length && at < 0; off++) {
      if (marker.every((b, j) => ram[off + j] === b)) at = off - 12 - 16;
    }
    const rx = written?.ok ? "used" : "pending";
    // vdpa_sim_net completes the TX buffer unless writing the RX buffer failed.
    const tx = read.ok && !written!.ok ? "pending" : "used";
    out.push(`${name} = tx ${tx}, rx ${rx}, ${at < 0 ? "not in guest RAM" : `landed at memfd+0x${at.toString(16)}`}`);
  };
  step("update-a", T.UPDATE, 0x100000n, 0x1000n, MEM + 0x50000n, A.RW);
  probe("probe-a", 0x100000n);
  step("batch-begin", T.BATCH_BEGIN, 0n, 0n, 0n, 0);
  step("invalidate-a", T.INVALIDATE, 0x100000n, 0x1000n, 0n, 0);
  step("update-a-moved", T.UPDATE, 0x100000n, 0x1000n, MEM + 0x60000n, A.RW);
  probe("probe-a-in-batch", 0x100000n);
  step("batch-end", T.BATCH_END, 0n, 0n, 0n, 0);
  probe("probe-a-after-batch", 0x100000n);
  step("batch-begin-2", T.BATCH_BEGIN, 0n, 0n, 0n, 0);
  step("invalidate-a-2", T.INVALIDATE, 0x100000n, 0x1000n, 0n, 0);
  step("update-a-second-mapping", T.UPDATE, 0x100000n, 0x1000n, MEM2 + 0x70000n, A.RW);
  step("batch-end-2", T.BATCH_END, 0n, 0n, 0n, 0);
  probe("probe-a-second-mapping", 0x100000n);
  step("update-read-only", T.UPDATE, 0x300000n, 0x1000n, MEM + 0x80000n, A.RO);
  step("update-private", T.UPDATE, 0x200000n, 0x1000n, PRIV_MAP, A.RW);
  probe("probe-read-only", 0x300000n);
  return out;
}

test("VDUSE parent: the model prints what Linux 6.12 printed", () => {
  expect(replay("vduse")).toEqual(recording("vhost-vdpa-vduse-6.12.out"));
});

test("vdpa_sim_net parent (the default): the model prints what Linux 6.12 printed", () => {
  const rec = recording("vhost-vdpa-sim-6.12.out");
  const sep = rec.indexOf("== dma probe");
  expect(sep).toBeGreaterThan(0);
  expect(replay("vdpa_sim")).toEqual(rec.slice(0, sep));
  // The device's own DMA: where vdpa_sim_net's loopback writes land, batch by batch.
  expect(replayDma()).toEqual(rec.slice(sep + 1));
});
