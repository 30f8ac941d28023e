import { VhostVdpa } from "../../src/vhost/vdpa";
import { U64_MAX } from "../../src/vhost/iotlb";
import type { UserAccess } from "../../src/process/file";
import {
  VHOST_MSG_SIZE,
  VHOST_SET_BACKEND_FEATURES,
  VHOST_SET_OWNER,
  VhostBackendFeature as F,
  VhostIotlbType as T,
  backendFeatureMask as bit,
} from "../../src/uapi/vhost";
import { Errno } from "../../src/uapi/errno";
import { Rng } from "../../src/util/random";
import { FakeMm } from "./fake-mm";
import { SCRATCH, msgBytes } from "./helpers";
import { NaiveIotlb } from "./naive-iotlb";

type Entry = { start: bigint; last: bigint; addr: bigint; perm: number };
const plain = ({ start, last, addr, perm }: Entry): Entry => ({ start, last, addr, perm });

/**
 * The vhost-vdpa message rules restated naively (array scans, no tree), for random
 * UPDATE / INVALIDATE / BATCH / REMAP sequences over several address spaces.
 */
class NaiveVdpa {
  iotlbs = new Map<number, NaiveIotlb>();
  inBatch = false;
  batchAsid = 0;
  /** asid of every set_map, in order. */
  setMaps: number[] = [];
  parents = new Map<number, Entry[]>();

  constructor(private readonly nas: number) {}

  private setMap(asid: number): void {
    this.setMaps.push(asid);
    this.parents.set(asid, this.iotlbs.get(asid)!.sorted().map(plain));
  }

  /** What write(2) returns. */
  write(asid: number, type: number, iova: bigint, size: bigint, uaddr: bigint, perm: number): number {
    if (type === T.UPDATE && size === 0n) return -Errno.EINVAL;
    // UPDATE and BATCH_BEGIN create the address space (even if the message then fails).
    if ((type === T.UPDATE || type === T.BATCH_BEGIN) && asid < this.nas && !this.iotlbs.has(asid))
      this.iotlbs.set(asid, new NaiveIotlb());
    const t = this.iotlbs.get(asid);
    if (t === undefined || (this.inBatch && this.batchAsid !== asid)) return -Errno.EFAULT;
    const end = (iova + size - 1n) & U64_MAX;
    switch (type) {
      case T.UPDATE:
        if (iova + size - 1n > U64_MAX) return -Errno.EFAULT;
        if (t.first(iova, end) !== null) return -Errno.EFAULT;
        t.add(iova, end, uaddr, perm);
        if (!this.inBatch) this.setMap(asid);
        return VHOST_MSG_SIZE;
      case T.INVALIDATE:
        t.del(iova, end);
        if (!this.inBatch) this.setMap(asid);
        return VHOST_MSG_SIZE;
      case T.BATCH_BEGIN:
        this.inBatch = true;
        this.batchAsid = asid;
        return VHOST_MSG_SIZE;
      case T.BATCH_END:
        if (this.inBatch) this.setMap(asid);
        this.inBatch = false;
        return VHOST_MSG_SIZE;
      case T.REMAP: {
        if (perm !== 0 || size === 0n) return -Errno.EFAULT;
        const m = t.first(iova, end);
        if (m === null || m.start !== iova || m.last !== end) return -Errno.EFAULT;
        if (!this.inBatch) this.setMap(asid); // before the address changes, as the RFC orders it
        m.addr = uaddr;
        return VHOST_MSG_SIZE;
      }
    }
    return -Errno.EFAULT;
  }
}

const PAGE = 0x1000n;

for (const [seed, nas] of [
  [11, 1],
  [12, 1],
  [13, 1],
  [21, 2],
  [22, 3],
] as const) {
  test(`random message sequences agree with the naive rules (seed ${seed}, ${nas} address space(s))`, () => {
    const rng = new Rng(0x7d9a + seed);
    const mm = new FakeMm();
    mm.mmap(SCRATCH, 4096);
    // No find_vma: the whole user range is one shared mapping, so one UPDATE is one entry.
    const task: UserAccess = { copyFromUser: (a, n) => mm.copyFromUser(a, n), copyToUser: (a, d) => mm.copyToUser(a, d) };
    const dev = new VhostVdpa({ remap: true, nas });
    dev.open();
    expect(dev.ioctl(task, VHOST_SET_OWNER, 0n)).toBe(0);
    if (nas > 1) {
      const f = new Uint8Array(8);
      new DataView(f.buffer).setBigUint64(0, bit(F.IOTLB_MSG_V2) | bit(F.IOTLB_BATCH) | bit(F.IOTLB_ASID), true);
      task.copyToUser(SCRATCH + 0x800n, f);
      expect(dev.ioctl(task, VHOST_SET_BACKEND_FEATURES, SCRATCH + 0x800n)).toBe(0);
    }
    const ref = new NaiveVdpa(nas);
    const known: { iova: bigint; size: bigint }[] = [];

    for (let step = 0; step < 1500; step++) {
      const k = rng.int(20);
      const type = k < 8 ? T.UPDATE : k < 12 ? T.INVALIDATE : k < 14 ? T.BATCH_BEGIN : k < 16 ? T.BATCH_END : T.REMAP;
      // One asid beyond nas now and then; the model only reads it with IOTLB_ASID acked.
      const asid = nas > 1 ? (rng.chance(0.05) ? nas : rng.int(nas)) : 0;
      let iova = BigInt(rng.int(64)) * PAGE;
      let size = BigInt(rng.range(1, 6)) * PAGE;
      if (rng.chance(0.05)) size = 0n;
      if (rng.chance(0.05)) size = BigInt(rng.range(1, 0x3000));
      if (rng.chance(0.03)) iova = U64_MAX - BigInt(rng.int(0x4000));
      if (type === T.REMAP && known.length > 0 && rng.chance(0.7)) ({ iova, size } = known[rng.int(known.length)]);
      const uaddr = BigInt(rng.u32()) * PAGE;
      const perm = type === T.REMAP ? (rng.chance(0.85) ? 0 : rng.range(1, 3)) : rng.int(4);
      if (type === T.UPDATE) known.push({ iova, size });

      const bytes = msgBytes(type, iova, size, uaddr, perm, asid);
      task.copyToUser(SCRATCH, bytes);
      expect(dev.write(task, SCRATCH, bytes.length)).toBe(ref.write(asid, type, iova, size, uaddr, perm));

      for (let a = 0; a <= nas; a++) {
        expect(dev.iotlb(a)?.entries().map(plain) ?? null).toEqual(ref.iotlbs.get(a)?.sorted().map(plain) ?? null);
      }
      expect(dev.setMapCalls.map((c) => c.asid)).toEqual(ref.setMaps);
      expect(dev.batching).toBe(ref.inBatch);
      if (step % 25 === 0) {
        for (let a = 0; a < nas; a++) expect(dev.parentEntries(a).map(plain)).toEqual(ref.parents.get(a) ?? []);
      }
    }
    // The sequences must exercise the rules, not just fail early.
    const kinds = new Set(dev.setMapCalls.map((c) => c.asid));
    expect(kinds.size).toBe(nas);
    expect(known.length).toBeGreaterThan(400);
  });
}
