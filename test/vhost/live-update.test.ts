/**
 * The live-update flow of the vdpa live update RFC (seed 004) on the simulated process
 * model: guest RAM is a memfd mapped MAP_SHARED by the old VMM; a second process gets the
 * memfd and the device fd (SCM_RIGHTS), maps the memfd at other addresses, takes the device
 * with VHOST_NEW_OWNER and REMAPs every entry in one batch; the old VMM exits. A device
 * writes into guest RAM at every step. After each flow, guest RAM (the memfd's pages) is
 * compared with the device's ledger, which knows where each byte belongs from the guest
 * layout alone: no byte lost, none stray. The failure paths show what the ledger catches.
 */
import { MAP_PRIVATE, MAP_SHARED, PROT_READ, PROT_WRITE } from "../../src/process";
import { Errno } from "../../src/uapi/errno";
import { VhostAccess } from "../../src/uapi/vhost";
import { DEFAULT_LAYOUT, LiveDevice, LiveUpdateWorld } from "../../src/vhost/live-update";

const OK = { ok: true };
const EFAULT = { ok: false, errno: Errno.EFAULT, errnoName: "EFAULT" };

/** The old VMM running with device DMA, the new VMM spawned with RAM mapped (all, or `mapLength` bytes). */
function running(mapLength?: number) {
  const w = new LiveUpdateWorld();
  const dev = new LiveDevice(w, 7);
  dev.tick(40);
  expect(dev.faults).toEqual([]);
  const next = w.spawnNew(mapLength);
  dev.tick(10);
  return { w, dev, next };
}

/** Ledger and RAM agree; and what the new VMM reads through its own mapping is RAM. */
function expectClean(w: LiveUpdateWorld, dev: LiveDevice) {
  expect(dev.check()).toEqual({ lost: 0, stray: 0, pending: 0 });
  const v = w.next!;
  const through = v.p.read(v.base, v.mapped)!;
  expect(Buffer.compare(Buffer.from(through), Buffer.from(w.ram.readAt(0, v.mapped)))).toBe(0);
}

test("end to end: NEW_OWNER, one REMAP per entry in a batch, old VMM exits; every device write lands", () => {
  const { w, dev, next } = running();
  const before = w.translations();
  expect(before.map((t) => t.iotlb)).toEqual(DEFAULT_LAYOUT.map((r) => w.old.base + BigInt(r.offset)));
  expect(before.map((t) => t.device)).toEqual(before.map((t) => t.iotlb));
  // The RFC: suspend the device before its addresses go stale, resume after the REMAPs.
  dev.suspend();
  expect(w.newOwner(next)).toEqual(OK);
  dev.tick(10); // held
  // The old VMM can no longer change the IOTLB.
  expect(w.remap(w.old, DEFAULT_LAYOUT[0], w.old.base)).toEqual(EFAULT);
  const calls = w.dev.setMapCalls.length;
  expect(w.batchBegin(next)).toEqual(OK);
  for (const r of DEFAULT_LAYOUT) {
    expect(w.remap(next, r)).toEqual(OK);
    dev.tick(2);
  }
  // Inside the batch the device would still translate to the old addresses.
  expect(w.translations().map((t) => t.device)).toEqual(before.map((t) => t.device));
  expect(w.batchEnd(next)).toEqual(OK);
  expect(w.dev.setMapCalls.length).toBe(calls + 1);
  const after = w.translations();
  expect(after.map((t) => t.iotlb)).toEqual(DEFAULT_LAYOUT.map((r) => next.base + BigInt(r.offset)));
  expect(after.map((t) => t.device)).toEqual(after.map((t) => t.iotlb));
  dev.resume();
  w.exitOld();
  dev.tick(40);
  expect(dev.faults).toEqual([]);
  expect(dev.done).toBe(dev.issued.length);
  expectClean(w, dev);
  // The read-only region still refuses device writes; the new owner can map more memory.
  expect(w.dev.dmaWrite(0x200000n, Uint8Array.of(1))).toEqual({ ok: false, faultIova: 0x200000n });
  expect(w.send(next, 2, 0x8000_0000n, 0x1000n, next.base, VhostAccess.RW)).toEqual(OK);
  expect(w.dev.dmaWrite(0x8000_0010n, Uint8Array.of(0xee)).ok).toBe(true);
  expect(w.ram.readAt(0x10, 1)).toEqual(Uint8Array.of(0xee));
});

test("the ledger catches misdirected writes: without suspending, stale addresses land in whatever the new VMM mapped there", () => {
  const { w, dev, next } = running();
  // The new VMM happens to have anonymous memory where the old one had guest RAM.
  expect(next.p.mmap(w.old.base, 0x100000).ret).toBe(Number(w.old.base));
  expect(w.newOwner(next)).toEqual(OK);
  dev.tick(20); // the device keeps writing through the old addresses, now in the new mm
  expect(dev.faults).toEqual([]);
  const c = dev.check();
  expect(c.lost).toBeGreaterThan(0);
  expect(c.stray).toBe(0);
  const decoy = next.p.read(w.old.base, 0x100000)!;
  expect(decoy.some((b) => b !== 0)).toBe(true);
});

test("a REMAP that does not match the entry is refused and changes nothing; the batch goes on", () => {
  const { w, dev, next } = running();
  dev.suspend();
  expect(w.newOwner(next)).toEqual(OK);
  expect(w.batchBegin(next)).toEqual(OK);
  const r1 = DEFAULT_LAYOUT[1];
  const tree = w.translations();
  expect(w.remap(next, r1, next.base + BigInt(r1.offset), BigInt(r1.size) / 2n)).toEqual(EFAULT); // size
  expect(w.remap(next, { ...r1, iova: r1.iova + 0x1000n })).toEqual(EFAULT); // start inside
  expect(w.remap(next, { ...r1, iova: 0x3000_0000n })).toEqual(EFAULT); // nothing there (ENOENT)
  expect(w.translations()).toEqual(tree);
  for (const r of DEFAULT_LAYOUT) expect(w.remap(next, r)).toEqual(OK);
  expect(w.batchEnd(next)).toEqual(OK);
  dev.resume();
  w.exitOld();
  dev.tick(20);
  expect(dev.faults).toEqual([]);
  expectClean(w, dev);
});

test("a REMAP to the wrong memory is accepted (the kernel cannot check it) and the ledger sees every misplaced byte", () => {
  const { w, dev, next } = running();
  dev.suspend();
  expect(w.newOwner(next)).toEqual(OK);
  expect(w.batchBegin(next)).toEqual(OK);
  const [r0, r1] = DEFAULT_LAYOUT;
  // The VMM swaps nothing but gets one offset wrong: region 1 now points at region 0's RAM.
  expect(w.remap(next, r0)).toEqual(OK);
  expect(w.remap(next, r1, next.base + BigInt(r0.offset))).toEqual(OK);
  for (const r of DEFAULT_LAYOUT.slice(2)) expect(w.remap(next, r)).toEqual(OK);
  expect(w.batchEnd(next)).toEqual(OK);
  dev.resume();
  dev.tick(60);
  const c = dev.check();
  expect(c.lost).toBeGreaterThan(0);
  expect(c.pending).toBe(0);
});

test("the old VMM exits before the batch ends: the device and guest RAM live on in the new VMM", () => {
  const { w, dev, next } = running();
  dev.suspend();
  expect(w.newOwner(next)).toEqual(OK);
  expect(w.batchBegin(next)).toEqual(OK);
  expect(w.remap(next, DEFAULT_LAYOUT[0])).toEqual(OK);
  w.exitOld();
  expect(w.old.p.mm).toBeNull();
  expect(w.dev.batching).toBe(true); // not released: the new VMM still holds the fd
  for (const r of DEFAULT_LAYOUT.slice(1)) expect(w.remap(next, r)).toEqual(OK);
  expect(w.batchEnd(next)).toEqual(OK);
  dev.resume();
  dev.tick(30);
  expect(dev.faults).toEqual([]);
  expectClean(w, dev);
});

test("the old VMM exits before NEW_OWNER: the device is still owned (by a dead mm) and can be taken", () => {
  const { w, dev, next } = running();
  dev.suspend();
  w.exitOld();
  dev.resume(); // its mm is gone: every write faults and is held
  dev.tick(5);
  expect(dev.faults.length).toBeGreaterThan(0);
  expect(dev.pending.length).toBe(5);
  expect(w.newOwner(next)).toEqual(OK);
  expect(w.batchBegin(next)).toEqual(OK);
  for (const r of DEFAULT_LAYOUT) expect(w.remap(next, r)).toEqual(OK);
  expect(w.batchEnd(next)).toEqual(OK);
  dev.flush();
  expect(dev.pending).toEqual([]);
  expectClean(w, dev);
});

test("a new owner whose mapping is shorter: REMAPs succeed, writes past its mapping fault and land once it maps the rest", () => {
  // The new VMM maps only the first 0xd0000 bytes: region 2 half, region 3 not at all.
  const { w, dev, next } = running(0xd0000);
  dev.suspend();
  expect(w.newOwner(next)).toEqual(OK);
  expect(w.batchBegin(next)).toEqual(OK);
  for (const r of DEFAULT_LAYOUT) expect(w.remap(next, r)).toEqual(OK);
  expect(w.batchEnd(next)).toEqual(OK);
  dev.resume();
  w.exitOld();
  dev.tick(60);
  // Only the write-only region past the mapping faults; nothing lands anywhere else.
  const r3 = DEFAULT_LAYOUT[3];
  expect(dev.faults.length).toBeGreaterThan(0);
  for (const f of dev.faults) expect(f >= r3.iova && f < r3.iova + BigInt(r3.size)).toBe(true);
  expect(dev.check()).toMatchObject({ lost: 0, stray: 0 });
  expect(dev.pending.length).toBeGreaterThan(0);
  expect(w.mapRest(next)).toEqual(OK);
  dev.flush();
  expectClean(w, dev);
});

test("vhost-vdpa maps only MAP_SHARED file memory: anonymous and MAP_PRIVATE memfd mappings give no entry", () => {
  const { w, next } = running();
  expect(w.newOwner(next)).toEqual(OK);
  const anon = BigInt(next.p.mmap(undefined, 0x10000).ret);
  const priv = BigInt(next.p.mmapFd(undefined, 0x10000, PROT_READ | PROT_WRITE, MAP_PRIVATE, next.memFd, 0x30000).ret);
  const shared = BigInt(next.p.mmapFd(undefined, 0x10000, PROT_READ | PROT_WRITE, MAP_SHARED, next.memFd, 0x30000).ret);
  const n = w.dev.iotlb(0)!.nmaps;
  expect(w.send(next, 2, 0x9000_0000n, 0x10000n, anon, VhostAccess.RW)).toEqual(OK);
  expect(w.send(next, 2, 0x9100_0000n, 0x10000n, priv, VhostAccess.RW)).toEqual(OK);
  expect(w.dev.iotlb(0)!.nmaps).toBe(n);
  expect(w.send(next, 2, 0x9200_0000n, 0x10000n, shared, VhostAccess.RW)).toEqual(OK);
  const e = w.dev.iotlb(0)!.first(0x9200_0000n, 0x9200_0000n)!;
  expect(e.opaque).toMatchObject({ offset: 0x30000n });
  // Device writes reach the memfd at that offset. The private mapping of the same pages sees
  // them only in pages it has not written (COW).
  expect(next.p.write(priv, Uint8Array.of(5)).errno).toBe(0);
  expect(w.dev.dmaWrite(0x9200_0000n, Uint8Array.of(9)).ok).toBe(true);
  expect(w.dev.dmaWrite(0x9200_1000n, Uint8Array.of(8)).ok).toBe(true);
  expect(w.ram.readAt(0x30000, 1)).toEqual(Uint8Array.of(9));
  expect(next.p.read(priv, 1)).toEqual(Uint8Array.of(5));
  expect(next.p.read(priv + 0x1000n, 1)).toEqual(Uint8Array.of(8));
});
