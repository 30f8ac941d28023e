/**
 * The mlx5-like VF (src/vfio/mlx5.ts), modelled from the driver's source (not recorded):
 * its page tracker against a naive Set-based reference (random armed ranges and DMA),
 * REPORT read-and-clear at several page sizes through the core's iova_bitmap, the range
 * limit (vfio_combine_iova_ranges) and the address-space check, the migration FSM with
 * PRE_COPY and the PRECOPY_INFO numbers mlx5vf_precopy_ioctl computes, a stream round
 * trip into a second device, and errors as values.
 */
import { Process } from "../../src/process";
import { Rng } from "../../src/util/random";
import { Errno } from "../../src/uapi/errno";
import { LOG_MAX_RANGES } from "../../src/uapi/vfio";
import {
  Mlx5Device,
  MLX5_MIGF_HEADER_SIZE,
  VfioCoreDevice,
  VfioDevice,
  installVfioDevice,
  mlx5ImageByte,
  vfioCombineIovaRanges,
  VFIO_CORE_LINUX_6_1,
  VFIO_CORE_LINUX_6_12,
} from "../../src/vfio";
import type { Mlx5Options, VfioCoreProfile, VfioLogRange } from "../../src/vfio";

const K4 = 0x1000n;
const MiB = 1n << 20n;
const GiB = 1n << 30n;

function world(opts: Mlx5Options = {}, profile: VfioCoreProfile = opts.profile ?? VFIO_CORE_LINUX_6_12) {
  const proc = new Process();
  const drv = new Mlx5Device({ ...opts, profile });
  installVfioDevice(proc, "/dev/vfio/devices/vfio0", new VfioCoreDevice(drv, profile));
  const d = VfioDevice.open(proc, "/dev/vfio/devices/vfio0");
  if (!d.ok) throw new Error("open");
  return { proc, dev: d.value, drv };
}

/** Bits set in a REPORT bitmap, as IOVAs. */
function bitsOf(bitmap: Uint8Array, iova: bigint, pageSize: bigint): bigint[] {
  const out: bigint[] = [];
  bitmap.forEach((byte, i) => {
    for (let b = 0; b < 8; b++) if (byte & (1 << b)) out.push(iova + BigInt(i * 8 + b) * pageSize);
  });
  return out;
}

const err = (errno: number) => ({ ok: false, errno });

describe("mlx5 page tracker", () => {
  test("records exactly the written pages inside armed ranges (property, naive Set reference)", () => {
    const rng = new Rng(1205);
    for (let trial = 0; trial < 40; trial++) {
      const { dev, drv } = world({ caps: { maxNumRange: 64 } });
      // 1..5 disjoint page-aligned ranges within 64 MiB.
      const n = 1 + rng.int(5);
      const starts = new Set<number>();
      while (starts.size < n) starts.add(rng.int(16) * 4);
      const ranges = [...starts].sort((a, b) => a - b).map((s) => ({ iova: BigInt(s) * MiB, length: BigInt(1 + rng.int(3)) * MiB }));
      expect(dev.startLogging(ranges, K4)).toEqual({ ok: true, value: { pageSize: K4 } });
      const ref = new Set<bigint>();
      for (let i = 0; i < 300; i++) {
        const iova = BigInt(rng.int(70 * 1024 * 1024));
        const len = BigInt(1 + rng.int(3 * 4096));
        const write = rng.int(4) !== 0;
        drv.dma(iova, len, write);
        if (!write) continue;
        // Reference: each written byte inside [iova, iova + length - 1) of a range (mlx5
        // programs length = last - start) dirties its 4 KiB page.
        for (let p = iova & ~(K4 - 1n); p < iova + len; p += K4) {
          const lo = p > iova ? p : iova;
          const hi = p + K4 < iova + len ? p + K4 : iova + len;
          if (ranges.some((r) => lo < r.iova + r.length - 1n && hi > r.iova)) ref.add(p);
        }
      }
      const want = [...ref].sort((a, b) => (a < b ? -1 : 1));
      expect(drv.dirtyIovas()).toEqual(want);
      expect(drv.dirtyPageCount).toBe(want.length);
      const rep = dev.report(0n, 128n * MiB, K4);
      expect(rep.ok).toBe(true);
      if (rep.ok) expect(bitsOf(rep.value, 0n, K4)).toEqual(want);
      expect(drv.dirtyIovas()).toEqual([]); // read and clear
    }
  });

  test("a write outside every armed range is not recorded (Cloud Hypervisor #8567)", () => {
    const { dev, drv } = world();
    expect(dev.startLogging([{ iova: 0n, length: GiB }], K4).ok).toBe(true);
    expect(drv.dma(2n * GiB, K4, true)).toBe("untracked"); // a mapping made after START
    expect(drv.dma(K4, K4, true)).toBe("logged");
    const rep = dev.report(0n, 4n * GiB, K4);
    expect(rep.ok && bitsOf(rep.value, 0n, K4)).toEqual([K4]);
  });

  test("no logging before START, after STOP, or while the device is quiesced; reads dirty nothing", () => {
    const { dev, drv } = world();
    expect(drv.dma(0n, K4, true)).toBe("untracked");
    dev.startLogging([{ iova: 0n, length: GiB }], K4);
    expect(drv.dma(0n, K4, false)).toBe("none");
    expect(dev.setState("RUNNING_P2P").ok).toBe(true);
    expect(drv.dma(0n, K4, true)).toBe("none");
    expect(dev.setState("RUNNING").ok).toBe(true);
    expect(drv.dma(0n, K4, true)).toBe("logged");
    expect(dev.stopLogging()).toEqual({ ok: true, value: undefined });
    expect(drv.dma(0n, K4, true)).toBe("untracked");
    expect(dev.report(0n, GiB, K4)).toMatchObject(err(Errno.EINVAL)); // no tracker
  });

  test.each([
    [K4, K4],
    [K4, 64n * K4],
    [2n * MiB, K4],
    [2n * MiB, 2n * MiB],
    [64n * K4, 2n * MiB],
  ])("report read-and-clear: tracked %p, reported at %p", (tracked, reportPage) => {
    const { dev, drv } = world();
    expect(dev.startLogging([{ iova: 0n, length: GiB }], tracked)).toEqual({ ok: true, value: { pageSize: tracked } });
    const writes = [0n, 5n * K4 + 7n, 3n * MiB, 3n * MiB + 100n, 700n * MiB + 2n * K4];
    for (const w of writes) drv.dma(w, 8n, true);
    const pages = new Set(writes.map((w) => w - (w % tracked)));
    // Each tracked page sets the report pages it overlaps.
    const want = new Set<bigint>();
    for (const p of pages) for (let a = p - (p % reportPage); a < p + tracked; a += reportPage) want.add(a);
    const rep = dev.report(0n, GiB, reportPage);
    expect(rep.ok && bitsOf(rep.value, 0n, reportPage)).toEqual([...want].sort((a, b) => (a < b ? -1 : 1)));
    const again = dev.report(0n, GiB, reportPage);
    expect(again.ok && bitsOf(again.value, 0n, reportPage)).toEqual([]);
  });

  test("a report of part of the space clears only that part", () => {
    const { dev, drv } = world();
    dev.startLogging([{ iova: 0n, length: GiB }], K4);
    drv.dma(K4, 1n, true);
    drv.dma(512n * MiB, 1n, true);
    const lo = dev.report(0n, 256n * MiB, K4);
    expect(lo.ok && bitsOf(lo.value, 0n, K4)).toEqual([K4]);
    expect(drv.dirtyIovas()).toEqual([512n * MiB]);
  });

  test("page size hint clamped to the firmware's limits; the chosen size is returned", () => {
    const a = world({ caps: { logMinPageSize: 13, logMaxPageSize: 21 } });
    expect(a.dev.startLogging([{ iova: 0n, length: GiB }], K4)).toEqual({ ok: true, value: { pageSize: 8192n } });
    const b = world({ caps: { logMinPageSize: 12, logMaxPageSize: 21 } });
    expect(b.dev.startLogging([{ iova: 0n, length: GiB }], GiB)).toEqual({ ok: true, value: { pageSize: 2n * MiB } });
  });

  test("a second START while one is active: EINVAL, the first stays armed", () => {
    const { dev, drv } = world();
    dev.startLogging([{ iova: 0n, length: MiB }], K4);
    expect(dev.startLogging([{ iova: GiB, length: MiB }], K4)).toMatchObject(err(Errno.EINVAL));
    expect(drv.dma(0n, 1n, true)).toBe("logged");
    expect(drv.dma(GiB, 1n, true)).toBe("untracked");
  });

  test("a tracker error: REPORT answers EIO until STOP", () => {
    const { dev, drv } = world();
    dev.startLogging([{ iova: 0n, length: MiB }], K4);
    drv.injectTrackerError();
    expect(dev.report(0n, MiB, K4)).toMatchObject(err(Errno.EIO));
    dev.stopLogging();
    expect(dev.startLogging([{ iova: 0n, length: MiB }], K4).ok).toBe(true);
    expect(dev.report(0n, MiB, K4).ok).toBe(true);
  });
});

describe("mlx5 range limit: vfio_combine_iova_ranges", () => {
  const R = (s: bigint, l: bigint): VfioLogRange => ({ start: s, last: s + l - 1n });

  test("merges across the smallest gap first, the first on a tie", () => {
    const rs = [R(0n, K4), R(10n * K4, K4), R(12n * K4, K4), R(100n * K4, K4), R(103n * K4, K4)];
    expect(vfioCombineIovaRanges(rs, 4)).toEqual([R(0n, K4), R(10n * K4, 3n * K4), R(100n * K4, K4), R(103n * K4, K4)]);
    expect(vfioCombineIovaRanges(rs, 3)).toEqual([R(0n, K4), R(10n * K4, 3n * K4), R(100n * K4, 4n * K4)]);
    expect(vfioCombineIovaRanges(rs, 1)).toEqual([R(0n, 104n * K4)]);
    expect(vfioCombineIovaRanges(rs, 5)).toEqual(rs);
  });

  test("property: the result covers every input range and has at most req ranges", () => {
    const rng = new Rng(77);
    for (let t = 0; t < 200; t++) {
      const n = 1 + rng.int(12);
      const starts = new Set<number>();
      while (starts.size < n) starts.add(rng.int(1000) * 2);
      const rs = [...starts].sort((a, b) => a - b).map((s) => R(BigInt(s) * K4, K4));
      const req = 1 + rng.int(6);
      const out = vfioCombineIovaRanges(rs, req);
      expect(out.length).toBe(Math.min(n, req));
      for (const r of rs) expect(out.some((o) => o.start <= r.start && o.last >= r.last)).toBe(true);
      for (let i = 1; i < out.length; i++) expect(out[i].start > out[i - 1].last).toBe(true);
    }
  });

  test("more ranges than the device takes: START succeeds and DMA in the merged gaps is logged", () => {
    const { dev, drv } = world({ caps: { maxNumRange: 2 } });
    const ranges = [
      { iova: 0n, length: MiB },
      { iova: 2n * MiB, length: MiB },
      { iova: GiB, length: MiB },
    ];
    expect(dev.startLogging(ranges, K4).ok).toBe(true);
    expect(drv.armed).toEqual([
      { start: 0n, end: 3n * MiB - 1n },
      { start: GiB, end: GiB + MiB - 1n },
    ]);
    expect(drv.dma(MiB + K4, 1n, true)).toBe("logged"); // in the gap the driver merged over
    expect(drv.dma(512n * MiB, 1n, true)).toBe("untracked");
  });

  test("above LOG_MAX_RANGES the core refuses first (E2BIG), whatever the driver could merge", () => {
    const { dev, drv } = world({ caps: { maxNumRange: 1 } });
    const ranges = Array.from({ length: LOG_MAX_RANGES + 1 }, (_, i) => ({ iova: BigInt(i) * 2n * K4, length: K4 }));
    expect(dev.startLogging(ranges, K4)).toMatchObject(err(Errno.E2BIG));
    expect(drv.logActive).toBe(false);
    expect(dev.startLogging(ranges.slice(0, LOG_MAX_RANGES), K4).ok).toBe(true);
    expect(drv.armed.length).toBe(1);
  });

  test("the summed length outside the firmware's address-space limits: EOPNOTSUPP, nothing armed", () => {
    const { dev, drv } = world({ caps: { logMinAddrSpace: 20, logMaxAddrSpace: 30 } });
    expect(dev.startLogging([{ iova: 0n, length: 64n * K4 }], K4)).toMatchObject(err(Errno.EOPNOTSUPP));
    expect(dev.startLogging([{ iova: 0n, length: 4n * GiB }], K4)).toMatchObject(err(Errno.EOPNOTSUPP));
    expect(drv.logActive).toBe(false);
    // 1 GiB: length - 1 summed, ilog2 = 29.
    expect(dev.startLogging([{ iova: 0n, length: GiB }], K4).ok).toBe(true);
  });
});

describe("mlx5 migration", () => {
  test("migration flags: PRE_COPY on 6.12, not on 6.1", () => {
    expect(world().dev.migrationFlags()).toEqual({ ok: true, value: 1 | 2 | 4 });
    expect(world({}, VFIO_CORE_LINUX_6_1).dev.migrationFlags()).toEqual({ ok: true, value: 1 | 2 });
  });

  test("PRE_COPY: initial bytes, then dirty bytes as mlx5vf_precopy_ioctl computes them, ENOMSG at the temporary end", () => {
    const img = 40000n;
    const { dev, drv } = world({ imageBytes: img });
    expect(dev.dataSize()).toEqual({ ok: true, value: img });
    const s = dev.setState("PRE_COPY");
    expect(s.ok).toBe(true);
    const fd = s.ok ? s.value.dataFd! : -1;
    const initial = 24n + BigInt(MLX5_MIGF_HEADER_SIZE) + img; // STOP_COPY_SIZE record, FW_DATA header, image
    expect(dev.precopyInfo(fd)).toEqual({ ok: true, value: { initialBytes: initial, dirtyBytes: 0n } });
    const first = dev.readData(fd, 24);
    expect(first.ok && first.value.length).toBe(24);
    if (first.ok) {
      const dv = new DataView(first.value.buffer);
      expect([dv.getBigUint64(0, true), dv.getUint32(8, true), dv.getUint32(12, true)]).toEqual([8n, 1, 1]);
      expect(dv.getBigUint64(16, true)).toBe(((img + img / 10n + 4095n) / 4096n) * 4096n);
    }
    expect(dev.precopyInfo(fd)).toEqual({ ok: true, value: { initialBytes: initial - 24n, dirtyBytes: 0n } });
    // The device runs: its state changes while the initial bytes are read.
    expect(drv.runState(3000n)).toBe(true);
    // readAllData reads the rest of the initial bytes, then fails on ENOMSG (never a 0 in PRE_COPY).
    expect(dev.readAllData(fd)).toMatchObject(err(Errno.ENOMSG));
    expect(dev.readData(fd, 16)).toMatchObject(err(Errno.ENOMSG));
    // All initial bytes read: dirty_bytes = unread (0) + the incremental size; a new record is saved.
    expect(dev.precopyInfo(fd)).toEqual({ ok: true, value: { initialBytes: 0n, dirtyBytes: 3000n } });
    expect(dev.precopyInfo(fd)).toEqual({ ok: true, value: { initialBytes: 0n, dirtyBytes: 16n + 3000n } });
    const inc = dev.readData(fd, 100000);
    expect(inc.ok && inc.value.length).toBe(16 + 3000);
    // Nothing dirty: dirty_bytes 0, no record, reads hit the temporary end.
    expect(dev.precopyInfo(fd)).toEqual({ ok: true, value: { initialBytes: 0n, dirtyBytes: 0n } });
    expect(dev.readData(fd, 16)).toMatchObject(err(Errno.ENOMSG));
    // Stop and copy: PRE_COPY_P2P answers without querying; STOP_COPY adds the final increment, no new fd.
    drv.runState(500n);
    expect(dev.setState("PRE_COPY_P2P").ok).toBe(true);
    expect(drv.runState(1n)).toBe(false); // suspended
    expect(dev.precopyInfo(fd)).toEqual({ ok: true, value: { initialBytes: 0n, dirtyBytes: 0n } });
    expect(dev.setState("STOP_COPY")).toEqual({ ok: true, value: { dataFd: null } });
    expect(dev.precopyInfo(fd)).toMatchObject(err(Errno.EINVAL)); // not PRE_COPY any more
    const fin = dev.readAllData(fd);
    expect(fin.ok && fin.value.length).toBe(16 + 500);
    expect(dev.readData(fd, 16)).toEqual({ ok: true, value: new Uint8Array(0) }); // complete: EOF
    expect(dev.setState("STOP").ok).toBe(true);
    expect(dev.readData(fd, 16)).toMatchObject(err(Errno.ENODEV)); // disabled
  });

  test("PRE_COPY -> RUNNING abandons the session; the data fd is disabled", () => {
    const { dev } = world();
    const s = dev.setState("PRE_COPY");
    const fd = s.ok ? s.value.dataFd! : -1;
    expect(dev.setState("RUNNING").ok).toBe(true);
    expect(dev.readData(fd, 16)).toMatchObject(err(Errno.ENODEV));
    expect(dev.precopyInfo(fd)).toMatchObject(err(Errno.EINVAL));
  });

  test("STOP -> STOP_COPY: the full state with its stop-copy size record, then EOF; 6.1 sends the bare image", () => {
    const img = 5000n;
    const a = world({ imageBytes: img });
    a.drv.runState(0n, 1000n); // the state grew while running
    expect(a.dev.dataSize()).toEqual({ ok: true, value: img + 1000n });
    a.dev.setState("STOP");
    const s = a.dev.setState("STOP_COPY");
    const fd = s.ok ? s.value.dataFd! : -1;
    expect(a.dev.precopyInfo(fd)).toMatchObject(err(Errno.EINVAL));
    const all = a.dev.readAllData(fd);
    expect(all.ok && all.value.length).toBe(24 + 16 + 6000);
    const b = world({ imageBytes: img }, VFIO_CORE_LINUX_6_1);
    expect(b.dev.setState("PRE_COPY")).toMatchObject(err(Errno.EINVAL));
    b.dev.setState("STOP");
    const t = b.dev.setState("STOP_COPY");
    const raw = b.dev.readAllData(t.ok ? t.value.dataFd! : -1);
    expect(raw.ok && raw.value.length).toBe(5000);
  });

  test("reads in odd-sized pieces return the generated image bytes (mlx5ImageByte), across record boundaries", () => {
    const { dev } = world({ imageBytes: 3000n });
    dev.setState("STOP");
    const s = dev.setState("STOP_COPY");
    const all = dev.readAllData(s.ok ? s.value.dataFd! : -1, 7);
    expect(all.ok).toBe(true);
    if (!all.ok) return;
    const img = all.value.subarray(24 + MLX5_MIGF_HEADER_SIZE);
    expect(img.length).toBe(3000);
    expect([...img]).toEqual(Array.from({ length: 3000 }, (_, i) => mlx5ImageByte(1, BigInt(i))));
    expect(new DataView(all.value.buffer, all.value.byteOffset + 24).getBigUint64(0, true)).toBe(3000n); // the FW_DATA header
  });

  test("a saved stream resumes into a second device: every FW_DATA image loaded", () => {
    const src = world({ imageBytes: 9000n });
    const s = src.dev.setState("PRE_COPY");
    const fd = s.ok ? s.value.dataFd! : -1;
    const head = src.dev.readData(fd, 100000);
    src.drv.runState(700n);
    src.dev.precopyInfo(fd); // saves the increment
    src.dev.setState("STOP_COPY");
    const tail = src.dev.readAllData(fd);
    expect(head.ok && tail.ok).toBe(true);
    const stream = head.ok && tail.ok ? { ok: true as const, value: new Uint8Array([...head.value, ...tail.value]) } : { ok: false as const };
    const dst = world({ imageBytes: 1n });
    dst.dev.setState("STOP");
    const r = dst.dev.setState("RESUMING");
    const wfd = r.ok ? r.value.dataFd! : -1;
    if (stream.ok) {
      // Written in odd-sized pieces: records may straddle writes.
      for (let o = 0; o < stream.value.length; o += 1234) expect(dst.dev.writeData(wfd, stream.value.slice(o, o + 1234)).ok).toBe(true);
    }
    expect(dst.dev.setState("STOP").ok).toBe(true);
    expect(dst.drv.loaded.map((l) => l.bytes)).toEqual([9000n, 700n, 0n]);
    expect(dst.drv.loaded[0].firstByte).toBe(mlx5ImageByte(1, 0n));
    expect(dst.dev.dataSize()).toEqual({ ok: true, value: 9000n });
  });

  test("a resume record with an unknown mandatory tag: EOPNOTSUPP; too large: ENOMEM", () => {
    const { dev } = world();
    dev.setState("STOP");
    const r = dev.setState("RESUMING");
    const fd = r.ok ? r.value.dataFd! : -1;
    const h = new Uint8Array(16);
    new DataView(h.buffer).setBigUint64(0, 8n, true);
    new DataView(h.buffer).setUint32(12, 7, true);
    expect(dev.writeData(fd, h)).toMatchObject(err(Errno.EOPNOTSUPP));
    const { dev: d2 } = world();
    d2.setState("STOP");
    const r2 = d2.setState("RESUMING");
    const big = new Uint8Array(16);
    new DataView(big.buffer).setBigUint64(0, 1n << 33n, true);
    expect(d2.writeData(r2.ok ? r2.value.dataFd! : -1, big)).toMatchObject(err(Errno.ENOMEM));
  });

  test("RESET: RUNNING, files disabled, tracker kept; close frees the tracker", () => {
    const { dev, drv } = world();
    dev.startLogging([{ iova: 0n, length: MiB }], K4);
    const s = dev.setState("PRE_COPY");
    const fd = s.ok ? s.value.dataFd! : -1;
    expect(dev.reset().ok).toBe(true);
    expect(dev.getStateName()).toEqual({ ok: true, value: "RUNNING" });
    expect(dev.readData(fd, 16)).toMatchObject(err(Errno.ENODEV));
    expect(drv.logActive).toBe(true);
    dev.close();
    expect(drv.logActive).toBe(false);
  });

  test.each([["linux-6.12", VFIO_CORE_LINUX_6_12], ["linux-6.1", VFIO_CORE_LINUX_6_1]] as const)(
    "random driving (%s): never throws, every answer a KernelResult, SET reaches its target or leaves the state as it was",
    (_name, profile) => {
      const rng = new Rng(4242);
      const states = ["STOP", "RUNNING", "STOP_COPY", "RESUMING", "RUNNING_P2P", "PRE_COPY", "PRE_COPY_P2P", "ERROR"] as const;
      const { dev, drv } = world({ caps: { maxNumRange: 3 } }, profile);
      let fd = -1;
      for (let i = 0; i < 1500; i++) {
        const op = rng.int(8);
        let r: { ok: boolean };
        if (op === 0) {
          const before = drv.state;
          const target = states[rng.int(states.length)];
          const s = dev.setState(target);
          if (s.ok) {
            expect(dev.getStateName()).toEqual({ ok: true, value: target });
            if (s.value.dataFd !== null) fd = s.value.dataFd;
          } else {
            // The model's firmware never fails an arc: only vfio_mig_get_next_state's EINVAL.
            expect(s).toMatchObject(err(Errno.EINVAL));
            expect(drv.state).toBe(before);
          }
          r = s;
        } else if (op === 1) r = dev.startLogging(Array.from({ length: 1 + rng.int(6) }, (_, k) => ({ iova: BigInt(k) * 4n * MiB, length: MiB })), BigInt(1 << (10 + rng.int(14))));
        else if (op === 2) r = dev.stopLogging();
        else if (op === 3) r = dev.report(BigInt(rng.int(4)) * MiB, BigInt(1 + rng.int(8)) * MiB, BigInt(1 << (12 + rng.int(3))));
        else if (op === 4) r = dev.precopyInfo(fd);
        else if (op === 5) r = dev.readData(fd, rng.int(5000));
        else if (op === 6) r = { ok: drv.dma(BigInt(rng.int(32 * 1024 * 1024)), BigInt(rng.int(9000)), rng.int(2) === 0) !== "none" };
        else r = { ok: drv.runState(BigInt(rng.int(4000)), BigInt(rng.int(100))) };
        expect(typeof r.ok).toBe("boolean");
      }
    },
  );
});
