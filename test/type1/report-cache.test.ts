/**
 * The batched GET_BITMAP's record cache (src/type1/dirty.ts, ReportCache) against the same
 * calls with the cache dropped before every GET: random scripts of maps, unmaps, GETs over
 * runs of mappings (often the previous range again, which is what the cache serves),
 * emulated-device pins and unpins, dma_rw writes, STOP/START and user-bitmap fills must give
 * the same return values, the same user bitmap bytes and the same per-mapping bitmaps
 * (including the stale bits above nbits). A change that forgets to bump dirtyGen shows here.
 */
import { Type1Handle, createVfioProcess, type VfioEmulatedDevice } from "../../src/type1";
import { vtdPlatform } from "../../src/iommu";
import { VFIO_GROUP_SET_CONTAINER, IOMMU_READ, IOMMU_WRITE } from "../../src/uapi/vfio";
import { Rng } from "../../src/util/random";

type Op =
  | { k: "map"; slot: number; skip: number; pages: number }
  | { k: "unmap"; pick: number }
  | { k: "get"; a: number; b: number; again: boolean }
  | { k: "pin"; pick: number; page: number }
  | { k: "unpin"; pick: number }
  | { k: "rw"; pick: number; page: number }
  | { k: "fill"; byte: number }
  | { k: "restart" };

// Slots of 512 pages: mappings of up to 300 pages cover more than one bitmap word, so a
// stale "low words clean" record would leave bits behind.
const SLOT = 0x200000n;
const BASE = 0x100000n;
const UBYTES = 4096;

function script(rng: Rng, n: number): Op[] {
  const ops: Op[] = [];
  for (let i = 0; i < n; i++) {
    const r = rng.int(100);
    if (r < 30) ops.push({ k: "map", slot: rng.int(20), skip: rng.int(100), pages: 1 + rng.int(rng.chance(0.3) ? 300 : 3) });
    else if (r < 38) ops.push({ k: "unmap", pick: rng.int(1000) });
    else if (r < 78) ops.push({ k: "get", a: rng.int(1000), b: rng.int(1000), again: rng.chance(0.6) });
    else if (r < 83) ops.push({ k: "pin", pick: rng.int(1000), page: rng.int(300) });
    else if (r < 88) ops.push({ k: "unpin", pick: rng.int(1000) });
    else if (r < 93) ops.push({ k: "rw", pick: rng.int(1000), page: rng.int(300) });
    else if (r < 98) ops.push({ k: "fill", byte: rng.int(256) });
    else ops.push({ k: "restart" });
  }
  return ops;
}

/** Runs `ops` on a fresh container (a VT-d group and an emulated one); returns a log of every observable result. */
function run(ops: Op[], dropCache: boolean): { log: string[]; hits: number } {
  const plat = vtdPlatform();
  plat.groups.push({ id: 7, devices: [{ name: "mdev0", resv: [] }], emulated: true });
  const proc = createVfioProcess(plat);
  const opened = Type1Handle.open(proc, { groupId: 0 });
  if (!opened.ok) throw new Error(opened.errnoName);
  const h = opened.value;
  const g = proc.open("/dev/vfio/7").ret;
  const fdBuf = BigInt(proc.mmap(undefined, 4096).ret);
  const b = new Uint8Array(4);
  new DataView(b.buffer).setInt32(0, h.fd, true);
  proc.write(fdBuf, b);
  expect(proc.ioctl(g, VFIO_GROUP_SET_CONTAINER, fdBuf).errno).toBe(0);
  const iommu = h.iommu;
  const guest = BigInt(proc.mmap(undefined, 21n * SLOT).ret);
  proc.fill(guest, Number(21n * SLOT), 1);
  const ubuf = BigInt(proc.mmap(undefined, UBYTES + 64).ret);
  proc.fill(ubuf, UBYTES + 64, 0); // written once: the batched path needs no fault
  expect(h.startDirtyTracking().ok).toBe(true);

  const maps: Array<{ iova: bigint; size: bigint }> = [];
  const pins: bigint[] = [];
  // The dma_unmap notifier: the device lets go of its pins in the range, as vendor drivers must.
  const dev: VfioEmulatedDevice = {
    group: plat.groups[1],
    dmaUnmap: (iova, len) => {
      for (const p of pins.filter((q) => q >= iova && q < iova + len)) {
        iommu.unpinPages(p, 1);
        pins.splice(pins.indexOf(p), 1);
      }
    },
  };
  expect(iommu.registerDevice(dev)).toBe(0);
  const log: string[] = [];
  let lastRange: [bigint, bigint] | null = null;
  let hits = 0;
  // Pins and writes mostly hit a mapping of the last GET's range: the next GET of that range
  // is the one a stale cache would get wrong.
  const pick = (n: number): { iova: bigint; size: bigint } => {
    const inRange = lastRange ? maps.filter((m) => m.iova >= lastRange![0] && m.iova < lastRange![1]) : [];
    const from = inRange.length > 0 && n % 4 !== 0 ? inRange : maps;
    return from[Math.floor(n / 4) % from.length];
  };
  const bitmaps = (): string =>
    maps.map(({ iova }) => {
      const d = iommu.vfioFindDma(iova, 1n);
      const bm = d?.bitmap;
      return bm ? Buffer.from(bm.core.u8.subarray(bm.ptr, bm.ptr + bm.bytes)).toString("hex") : "-";
    }).join(",");
  for (const op of ops) {
    switch (op.k) {
      case "map": {
        const iova = BASE + BigInt(op.slot) * SLOT + BigInt(op.skip) * 0x1000n;
        const size = BigInt(op.pages) * 0x1000n;
        const r = h.mapDma({ iova, vaddr: guest + (iova - BASE), size });
        log.push(`map ${iova.toString(16)} ${r.ok ? 0 : r.errnoName}`);
        if (r.ok) {
          maps.push({ iova, size });
          maps.sort((x, y) => (x.iova < y.iova ? -1 : 1));
        }
        break;
      }
      case "unmap": {
        if (maps.length === 0) break;
        const m = maps[op.pick % maps.length];
        const r = h.unmapDma({ iova: m.iova, size: m.size });
        log.push(`unmap ${r.ok ? 0 : r.errnoName}`);
        if (r.ok) maps.splice(maps.indexOf(m), 1);
        break;
      }
      case "get": {
        if (maps.length === 0) break;
        let range: [bigint, bigint];
        if (op.again && lastRange) range = lastRange;
        else {
          const a = op.a % maps.length;
          const z = a + (op.b % (maps.length - a));
          range = [maps[a].iova, maps[z].iova + maps[z].size];
        }
        lastRange = range;
        const bytes = Math.ceil(Number((range[1] - range[0]) / 0x1000n) / 64) * 8;
        if (dropCache) iommu.reportCache = null;
        else if (iommu.reportCache !== null && iommu.reportCache.gen === iommu.dirtyGen && iommu.reportCache.base === range[0]) hits++;
        const r = h.getDirtyBitmap({ iova: range[0], size: range[1] - range[0] }, { pgsize: 0x1000n, size: BigInt(bytes), data: ubuf });
        const user = Buffer.from(proc.read(ubuf, bytes + 8)!).toString("hex");
        log.push(`get ${range[0].toString(16)} ${r.ok ? 0 : r.errnoName} ${user} ${bitmaps()}`);
        break;
      }
      case "pin": {
        if (maps.length === 0) break;
        const m = pick(op.pick);
        const iova = m.iova + BigInt(op.page % Number(m.size / 0x1000n)) * 0x1000n;
        const r = iommu.pinPages(dev, iova, 1, IOMMU_READ | IOMMU_WRITE);
        log.push(`pin ${r.ret}`);
        if (r.ret === 1) pins.push(iova);
        break;
      }
      case "unpin": {
        if (pins.length === 0) break;
        const iova = pins.splice(op.pick % pins.length, 1)[0];
        log.push(`unpin ${iommu.unpinPages(iova, 1)}`);
        break;
      }
      case "rw": {
        if (maps.length === 0) break;
        const m = pick(op.pick);
        const iova = m.iova + BigInt(op.page % Number(m.size / 0x1000n)) * 0x1000n;
        log.push(`rw ${iommu.dmaRw(proc, iova, new Uint8Array([1, 2, 3]), true)}`);
        break;
      }
      case "fill":
        proc.fill(ubuf, UBYTES + 64, op.byte);
        break;
      case "restart":
        log.push(`stop ${h.stopDirtyTracking().ok} start ${h.startDirtyTracking().ok}`);
        break;
    }
  }
  proc.exit();
  return { log, hits };
}

describe("GET_BITMAP record cache", () => {
  let hits = 0;
  for (const seed of [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16]) {
    it(`seed ${seed}: the same results as with the cache dropped before every GET`, () => {
      const ops = script(new Rng(seed), 600);
      const ref = run(ops, true);
      const cached = run(ops, false);
      expect(ref.log.some((l) => / 0 [0-9a-f]+ /.test(l))).toBe(true);
      expect(cached.log).toEqual(ref.log);
      hits += cached.hits;
    });
  }
  it("the cached path was taken", () => {
    expect(hits).toBeGreaterThan(100);
  });
});
