import { VhostVdpa } from "../../src/vhost/vdpa";
import { U64_MAX } from "../../src/vhost/iotlb";
import type { UserAccess } from "../../src/process/file";
import { VHOST_MSG_SIZE, VHOST_SET_OWNER, VhostIotlbType as T } from "../../src/uapi/vhost";
import { Errno } from "../../src/uapi/errno";
import { Rng } from "../../src/util/random";
import { FakeMm } from "./fake-mm";
import { SCRATCH, msgBytes } from "./helpers";
import { NaiveIotlb } from "./naive-iotlb";

/**
 * The vhost-vdpa message rules restated naively (array scans, no tree), for random
 * UPDATE / INVALIDATE / BATCH / REMAP sequences.
 */
class NaiveVdpa {
  iotlb: NaiveIotlb | null = null;
  inBatch = false;
  setMaps = 0;
  parent: { start: bigint; last: bigint; addr: bigint; perm: number }[] = [];

  private setMap(): void {
    this.setMaps++;
    this.parent = this.iotlb!.sorted().map(({ start, last, addr, perm }) => ({ start, last, addr, perm }));
  }

  /** What write(2) returns. */
  write(type: number, iova: bigint, size: bigint, uaddr: bigint, perm: number): number {
    if (type === T.UPDATE && size === 0n) return -Errno.EINVAL;
    if (type === T.UPDATE || type === T.BATCH_BEGIN) this.iotlb ??= new NaiveIotlb();
    if (this.iotlb === null) return -Errno.EFAULT;
    const t = this.iotlb;
    const end = (iova + size - 1n) & U64_MAX;
    switch (type) {
      case T.UPDATE:
        if (iova + size - 1n > U64_MAX) return -Errno.EFAULT;
        if (t.first(iova, end) !== null) return -Errno.EFAULT;
        t.add(iova, end, uaddr, perm);
        if (!this.inBatch) this.setMap();
        return VHOST_MSG_SIZE;
      case T.INVALIDATE:
        t.del(iova, end);
        if (!this.inBatch) this.setMap();
        return VHOST_MSG_SIZE;
      case T.BATCH_BEGIN:
        this.inBatch = true;
        return VHOST_MSG_SIZE;
      case T.BATCH_END:
        if (this.inBatch) this.setMap();
        this.inBatch = false;
        return VHOST_MSG_SIZE;
      case T.REMAP: {
        if (perm !== 0 || size === 0n) return -Errno.EFAULT;
        const m = t.first(iova, end);
        if (m === null || m.start !== iova || m.last !== end) return -Errno.EFAULT;
        if (!this.inBatch) this.setMap(); // before the address changes, as the RFC orders it
        m.addr = uaddr;
        return VHOST_MSG_SIZE;
      }
    }
    return -Errno.EFAULT;
  }
}

const PAGE = 0x1000n;

for (const seed of [11, 12, 13, 14]) {
  test(`random message sequences agree with the naive rules (seed ${seed})`, () => {
    const rng = new Rng(0x7d9a + seed);
    const mm = new FakeMm();
    mm.mmap(SCRATCH, 4096);
    // No find_vma: the whole user range is one shared mapping, so one UPDATE is one entry.
    const task: UserAccess = { copyFromUser: (a, n) => mm.copyFromUser(a, n), copyToUser: (a, d) => mm.copyToUser(a, d) };
    const dev = new VhostVdpa({ remap: true });
    dev.open();
    expect(dev.ioctl(task, VHOST_SET_OWNER, 0n)).toBe(0);
    const ref = new NaiveVdpa();
    const known: { iova: bigint; size: bigint }[] = [];

    for (let step = 0; step < 1500; step++) {
      let type: number;
      const k = rng.int(20);
      type = k < 8 ? T.UPDATE : k < 12 ? T.INVALIDATE : k < 14 ? T.BATCH_BEGIN : k < 16 ? T.BATCH_END : T.REMAP;
      let iova = BigInt(rng.int(64)) * PAGE;
      let size = BigInt(rng.range(1, 6)) * PAGE;
      if (rng.chance(0.05)) size = 0n;
      if (rng.chance(0.05)) size = BigInt(rng.range(1, 0x3000));
      if (rng.chance(0.03)) iova = U64_MAX - BigInt(rng.int(0x4000));
      if (type === T.REMAP && known.length > 0 && rng.chance(0.7)) ({ iova, size } = known[rng.int(known.length)]);
      const uaddr = BigInt(rng.u32()) * PAGE;
      const perm = type === T.REMAP ? (rng.chance(0.85) ? 0 : rng.range(1, 3)) : rng.int(4);
      if (type === T.UPDATE) known.push({ iova, size });

      const bytes = msgBytes(type, iova, size, uaddr, perm);
      mm.copyToUser(SCRATCH, bytes);
      const got = dev.write(task, SCRATCH, bytes.length);
      expect(got).toBe(ref.write(type, iova, size, uaddr, perm));

      const tree = (dev.iotlb(0)?.entries() ?? []).map(({ start, last, addr, perm }) => ({ start, last, addr, perm }));
      expect(tree).toEqual((ref.iotlb?.sorted() ?? []).map(({ start, last, addr, perm }) => ({ start, last, addr, perm })));
      expect(dev.setMapCalls.length).toBe(ref.setMaps);
      expect(dev.batching).toBe(ref.inBatch);
      if (step % 25 === 0) {
        const parent = dev.parentEntries(0).map(({ start, last, addr, perm }) => ({ start, last, addr, perm }));
        expect(parent).toEqual(ref.parent);
      }
    }
  });
}
