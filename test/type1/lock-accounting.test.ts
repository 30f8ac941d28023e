/**
 * Seed 003 (the review of "vfio/type1: Remove locked page accounting workqueue"): both
 * designs of vfio_lock_acct() against a vCPU thread that holds mmap_lock for a page
 * fault, every interleaving enumerated by the deterministic scheduler.
 *
 * - `workqueue` (Linux <= 4.10): a map can be raced past RLIMIT_MEMLOCK, and a map that
 *   fits is refused while an unmap's uncharge is still queued.
 * - `synchronous` (4.11+): neither, in any schedule; its own failure modes are -EINTR when
 *   a fatal signal ends the wait for mmap_lock and -ESRCH when the mm is gone.
 *
 * In every schedule: no exception, a failed MAP_DMA leaves its container exactly as it was,
 * and once the kworker is done locked_vm equals the pages the containers charged (and
 * pinned): the workqueue design's fault is the limit, not drift.
 */
import { createVfioProcess, Type1Handle, type LockAccounting } from "../../src/type1";
import { vtdPlatform, type Platform } from "../../src/iommu";
import { Scheduler, SeededChooser, exploreSchedules, mmapLocked, munmapLocked, pageFault, type Chooser, type ReplayChooser, type SimThread } from "../../src/process";
import { Rng } from "../../src/util/random";
import * as vfioSim from "../../src";
import type { Process } from "../../src/process";
import { Errno, errnoName } from "../../src/uapi/errno";
import { snapshot } from "./state";

const P = 4096n;
const LIMIT_PAGES = 4;

function platform(): Platform {
  const p = vtdPlatform();
  p.groups.push({ id: 1, devices: [{ name: "0000:00:04.0", resv: [] }] });
  return p;
}

interface World {
  sched: Scheduler;
  proc: Process;
  /** Containers: the first holds group 0, the second group 1. */
  h: Type1Handle[];
  guest: bigint;
  /** -ENOMEM answers of __account_locked_vm(): the limit check under mmap_lock. */
  rechecks: number;
}

function world(design: LockAccounting, chooser: Chooser, limitPages: number | null = LIMIT_PAGES): World {
  const sched = new Scheduler({ chooser });
  const proc = createVfioProcess(platform(), { lockAccounting: design }, { sched, capIpcLock: false, ...(limitPages === null ? {} : { rlimitMemlock: BigInt(limitPages) * P }) });
  const h = [0, 1].map((groupId) => {
    const r = Type1Handle.open(proc, { groupId });
    if (!r.ok) throw new Error(r.errnoName);
    return r.value;
  });
  const guest = BigInt(proc.mmap(undefined, 64 * 4096).ret);
  proc.fill(guest, 64 * 4096, 1);
  const w: World = { sched, proc, h, guest, rechecks: 0 };
  const mm = proc.mm!;
  const account = mm.accountLockedVm.bind(mm);
  mm.accountLockedVm = (pages, inc, rlim, bypass) => {
    const r = account(pages, inc, rlim, bypass);
    if (r === -Errno.ENOMEM) w.rechecks++;
    return r;
  };
  return w;
}

/** The container's state without locked_vm (other threads may change that meanwhile). */
function containerState(h: Type1Handle): unknown {
  const s = snapshot(h.iommu, h.proc) as Record<string, unknown>;
  delete s.locked;
  return JSON.parse(JSON.stringify(s, (_k, v: unknown) => (typeof v === "bigint" ? v.toString() : v)));
}

/** MAP_DMA of `pages` guest pages from page `page` at `iova`: "ok" or the errno name; a failure must change nothing. */
function map(w: World, c: number, iova: bigint, page: number, pages: number): string {
  const before = containerState(w.h[c]);
  const r = w.h[c].mapDma({ iova, vaddr: w.guest + BigInt(page) * P, size: BigInt(pages) * P });
  if (r.ok) return "ok";
  expect(containerState(w.h[c])).toEqual(before);
  return r.errnoName;
}

function unmap(w: World, c: number, iova: bigint, pages: number): string {
  const r = w.h[c].unmapDma({ iova, size: BigInt(pages) * P });
  return r.ok ? `unmapped ${r.value.unmapped / P}` : r.errnoName;
}

/** A vCPU faulting a guest page: holds mmap_lock for read across one step. */
function vcpu(w: World): void {
  w.sched.spawn("vcpu", function* (self: SimThread) {
    yield* pageFault(w.proc, self, w.guest + 40n * P, true);
  });
}

/** locked_vm and what the containers charged and pinned, once every thread is done. */
function settled(w: World): string {
  const r = w.sched.run();
  expect(r.stuck).toBeNull();
  const mm = w.proc.mm!;
  const dmas = w.h.flatMap((h) => h.iommu.dmaList.toArray());
  const charged = dmas.reduce((a, d) => a + d.lockedVm, 0);
  const pinned = dmas.reduce((a, d) => a + d.runs.filter((x) => !x.reserved).reduce((b, x) => b + x.npages, 0), 0);
  expect(mm.lockedVm).toBe(charged);
  expect(mm.lockedVm).toBe(pinned);
  expect(mm.underflowWarnings).toBe(0);
  expect(mm.mmapLock.isLocked).toBe(false);
  return `locked_vm=${mm.lockedVm}`;
}

/** Runs `scenario` in every schedule; returns how often each outcome came out. */
function outcomes(scenario: (c: ReplayChooser) => string): Map<string, number> {
  const seen = new Map<string, number>();
  const rep = exploreSchedules((c) => {
    const o = scenario(c);
    seen.set(o, (seen.get(o) ?? 0) + 1);
  });
  expect(rep.complete).toBe(true);
  return seen;
}

const overLimit = (o: string): boolean => Number(/locked_vm=(-?\d+)/.exec(o)![1]) > LIMIT_PAGES;

/** One thread maps 3 pages, then 3 more: together over the 4-page limit. */
function twoMapsInARow(design: LockAccounting) {
  return (c: ReplayChooser): string => {
    const w = world(design, c);
    const res: string[] = [];
    w.sched.spawn("qemu", function* () {
      res.push(map(w, 0, 0n, 0, 3));
      yield;
      res.push(map(w, 0, 16n * P, 8, 3));
    });
    vcpu(w);
    const end = settled(w);
    return `${res.join(" ")} ${end}`;
  };
}

/** Two threads map 3 pages each into two containers of one process (one mm, one limit). */
function twoContainers(design: LockAccounting, counts?: { rechecks: number }) {
  return (c: ReplayChooser): string => {
    const w = world(design, c);
    const res: string[] = [];
    w.sched.spawn("qemu-a", function* () {
      res.push(`a:${map(w, 0, 0n, 0, 3)}`);
    });
    w.sched.spawn("qemu-b", function* () {
      res.push(`b:${map(w, 1, 0n, 8, 3)}`);
    });
    vcpu(w);
    const end = settled(w);
    const o = `${[...res].sort().join(" ")} ${end}`;
    if (counts) counts.rechecks += w.rechecks;
    return o;
  };
}

/** 3 pages mapped; one thread unmaps them and maps 3 others (which fit once the unmap is accounted). */
function unmapThenMap(design: LockAccounting) {
  return (c: ReplayChooser): string => {
    const w = world(design, c);
    expect(map(w, 0, 0n, 0, 3)).toBe("ok");
    const res: string[] = [];
    let refusedUnaccounted = false;
    w.sched.spawn("qemu", function* () {
      res.push(unmap(w, 0, 0n, 3));
      yield;
      const r = map(w, 0, 16n * P, 8, 3);
      // Nothing is mapped any more, yet locked_vm still counts the unmapped pages: their
      // uncharge is queued (or its kworker waits for mmap_lock).
      if (r === "ENOMEM" && w.h[0].iommu.dmaList.length === 0 && w.proc.mm!.lockedVm === 3) refusedUnaccounted = true;
      res.push(r);
    });
    vcpu(w);
    const end = settled(w);
    return `${res.join(" ")} ${end}${refusedUnaccounted ? " (uncharge not yet applied)" : ""}`;
  };
}

describe("seed 003: workqueue accounting (Linux <= 4.10)", () => {
  it("a map races the queued charge past RLIMIT_MEMLOCK", () => {
    const seen = outcomes(twoMapsInARow("workqueue"));
    expect(seen.get("ok ok locked_vm=6")).toBeGreaterThan(0);
    expect([...seen.keys()].some(overLimit)).toBe(true);
    // Schedules where the vCPU is not in the way behave like the fixed kernel.
    expect(seen.get("ok ENOMEM locked_vm=3")).toBeGreaterThan(0);
  });

  it("two containers of one process both map past the limit", () => {
    const seen = outcomes(twoContainers("workqueue"));
    expect(seen.get("a:ok b:ok locked_vm=6")).toBeGreaterThan(0);
  });

  it("a map that fits is refused while the unmap's uncharge is queued", () => {
    const seen = outcomes(unmapThenMap("workqueue"));
    expect([...seen.keys()].sort()).toEqual(["unmapped 3 ENOMEM locked_vm=0 (uncharge not yet applied)", "unmapped 3 ok locked_vm=3"]);
  });

  it("never fails a charge with -EINTR: the trylock does not wait", () => {
    const seen = outcomes((c) => {
      const w = world("workqueue", c, null);
      const res: string[] = [];
      const qemu = w.sched.spawn("qemu", function* () {
        res.push(map(w, 0, 0n, 0, 3));
      });
      vcpu(w);
      w.sched.spawn("kill", function* () {
        w.sched.kill(qemu);
      });
      const end = settled(w);
    return `${res.join(" ")} ${end}`;
    });
    expect([...seen.keys()]).toEqual(["ok locked_vm=3"]);
  });
});

describe("seed 003: synchronous accounting (Linux 4.11+)", () => {
  it("no schedule maps past the limit: the second map is refused", () => {
    const seen = outcomes(twoMapsInARow("synchronous"));
    expect([...seen.keys()]).toEqual(["ok ENOMEM locked_vm=3"]);
  });

  it("two containers racing are held to the limit by the recheck under mmap_lock", () => {
    const counts = { rechecks: 0 };
    const seen = outcomes(twoContainers("synchronous", counts));
    expect([...seen.keys()].sort()).toEqual(["a:ENOMEM b:ok locked_vm=3", "a:ok b:ENOMEM locked_vm=3"]);
    // Some schedules let both maps past the unlocked check: the recheck refused one.
    expect(counts.rechecks).toBeGreaterThan(0);
  });

  it("a map after an unmap is never refused", () => {
    const seen = outcomes(unmapThenMap("synchronous"));
    expect([...seen.keys()]).toEqual(["unmapped 3 ok locked_vm=3"]);
  });

  it("-EINTR: a fatal signal while waiting for mmap_lock fails the map, nothing pinned or charged", () => {
    const seen = outcomes((c) => {
      const w = world("synchronous", c, null);
      const res: string[] = [];
      const qemu = w.sched.spawn("qemu", function* () {
        res.push(map(w, 0, 0n, 0, 3));
      });
      vcpu(w);
      w.sched.spawn("kill", function* () {
        w.sched.kill(qemu);
      });
      const end = settled(w);
      const o = `${res.join(" ")} ${end}`;
      if (res[0] === "EINTR") expect(w.h[0].iommu.dmaList.length).toBe(0);
      return o;
    });
    expect([...seen.keys()].sort()).toEqual(["EINTR locked_vm=0", "ok locked_vm=3"]);
  });

  it("-EINTR in UNMAP_DMA's uncharge: the mapping goes, the charge stays until the process dies (as Linux ignores it)", () => {
    const seen = new Set<string>();
    exploreSchedules((c) => {
      const w = world("synchronous", c, null);
      expect(map(w, 0, 0n, 0, 3)).toBe("ok");
      const res: string[] = [];
      const qemu = w.sched.spawn("qemu", function* () {
        res.push(unmap(w, 0, 0n, 3));
      });
      vcpu(w);
      w.sched.spawn("kill", function* () {
        w.sched.kill(qemu);
      });
      expect(w.sched.run().stuck).toBeNull();
      const mm = w.proc.mm!;
      seen.add(`${res.join(" ")} dmas=${w.h[0].iommu.dmaList.length} locked_vm=${mm.lockedVm}`);
      w.proc.exit();
      expect(mm.underflowWarnings).toBe(0);
    });
    expect([...seen].sort()).toEqual(["unmapped 3 dmas=0 locked_vm=0", "unmapped 3 dmas=0 locked_vm=3"]);
  });

  it("-ESRCH: vfio_lock_acct() on an mm that is gone; the workqueue design returns quietly", () => {
    for (const design of ["synchronous", "workqueue"] as const) {
      const a = createVfioProcess(platform(), { lockAccounting: design }, { capIpcLock: false });
      const b = createVfioProcess(platform(), { lockAccounting: design });
      const opened = Type1Handle.open(a);
      if (!opened.ok) throw new Error(opened.errnoName);
      const h = opened.value;
      const guest = BigInt(a.mmap(undefined, 8 * 4096).ret);
      a.fill(guest, 8 * 4096, 1);
      expect(h.mapDma({ iova: 0n, vaddr: guest, size: 3n * P }).ok).toBe(true);
      const iommu = h.iommu;
      const dma = iommu.dmaList.at(0)!;
      // The owner hands the container to another process and exits.
      const container = a.sendFd(h.fd, b).ret;
      a.sendFd(h.groupFd, b);
      const mm = a.mm!;
      a.exit();
      expect(iommu.vfioLockAcct(dma, -3, true)).toBe(design === "synchronous" ? -Errno.ESRCH : 0);
      expect(dma.lockedVm).toBe(3);
      // UNMAP_DMA from the other process: vfio_unmap_unpin() ignores the error, as Linux does.
      const args = BigInt(b.mmap(undefined, 4096).ret);
      const u = new DataView(new ArrayBuffer(24));
      u.setUint32(0, 24, true);
      u.setBigUint64(16, 3n * P, true);
      b.write(args, new Uint8Array(u.buffer));
      const r = b.ioctl(container, 0x3b72 /* VFIO_IOMMU_UNMAP_DMA */, args);
      expect(errnoName(r.errno)).toBe(errnoName(0));
      expect(iommu.dmaList.length).toBe(0);
      expect(mm.underflowWarnings).toBe(0);
    }
  });
});

/**
 * Seeded schedules of a busier process: two QEMU threads mapping and unmapping at random
 * in two containers, two vCPUs faulting, and a thread that mmaps and munmaps (a writer of
 * mmap_lock, which GUP waits for). The same seed gives the same run.
 */
function busy(design: LockAccounting, seed: number): { maxLocked: number; end: string; log: string } {
  const w = world(design, new SeededChooser(seed));
  const ops = new Rng(seed ^ 0x5eed);
  let maxLocked = 0;
  const observe = (): void => {
    maxLocked = Math.max(maxLocked, w.proc.mm!.lockedVm);
  };
  const log: string[] = [];
  for (const c of [0, 1]) {
    const plan = Array.from({ length: 6 }, () => ({ slot: ops.int(3), pages: 1 + ops.int(3), unmap: ops.chance(0.4) }));
    w.sched.spawn(`qemu-${c}`, function* () {
      for (const op of plan) {
        const iova = BigInt(op.slot) * 8n * P;
        const r = op.unmap ? unmap(w, c, iova, 8) : map(w, c, iova, 16 * c + 4 * op.slot, op.pages);
        log.push(`${c}:${op.unmap ? "unmap" : "map"}@${op.slot}=${r}`);
        observe();
        yield;
      }
    });
  }
  for (const v of [0, 1]) {
    w.sched.spawn(`vcpu-${v}`, function* (self) {
      for (let i = 0; i < 2; i++) yield* pageFault(w.proc, self, w.guest + BigInt(40 + v) * P, i === 0);
    });
  }
  w.sched.spawn("mmap", function* (self) {
    const r = yield* mmapLocked(w.proc, self, 0x10000);
    yield* munmapLocked(w.proc, self, BigInt(r.ret), 0x10000);
  });
  const end = settled(w);
  observe();
  return { maxLocked, end, log: log.join(" ") };
}

describe("seed 003: seeded schedules of a busy process", () => {
  const SEEDS = 100;

  it("synchronous: locked_vm never passes the limit and always equals what is pinned", () => {
    for (let seed = 1; seed <= SEEDS; seed++) expect(busy("synchronous", seed).maxLocked).toBeLessThanOrEqual(LIMIT_PAGES);
  });

  it("workqueue: exact once the kworker is done, but some seeds pass the limit", () => {
    let over = 0;
    for (let seed = 1; seed <= SEEDS; seed++) if (busy("workqueue", seed).maxLocked > LIMIT_PAGES) over++;
    if (process.env.LOCKACCT_REPORT) console.log(`workqueue: ${over} of ${SEEDS} seeds passed the limit`);
    expect(over).toBeGreaterThan(0);
  });

  it("a seed replays to the same run", () => {
    for (const design of ["synchronous", "workqueue"] as const) expect(busy(design, 7)).toEqual(busy(design, 7));
  });
});

it("README: seed 18 of the workqueue design maps 24 KiB under a 16 KiB limit; the synchronous design refuses", () => {
  const run = (design: LockAccounting): { oks: boolean[]; kb: number } => {
    // Through the package's entry point, as the README imports it.
    const sched = new vfioSim.Scheduler({ chooser: new vfioSim.SeededChooser(18) });
    const proc = vfioSim.createVfioProcess(vfioSim.vtdPlatform(), { lockAccounting: design }, { sched, rlimitMemlock: 16384n, capIpcLock: false });
    const opened = vfioSim.Type1Handle.open(proc);
    if (!opened.ok) throw new Error(opened.errnoName);
    const vfio = opened.value;
    const guest = BigInt(proc.mmap(undefined, 1 << 20).ret);
    proc.fill(guest, 1 << 20, 1);
    sched.spawn("vcpu", function* (self) {
      yield* vfioSim.pageFault(proc, self, guest + 0x80000n, true);
    });
    const oks: boolean[] = [];
    sched.spawn("qemu", function* () {
      oks.push(vfio.mapDma({ iova: 0n, vaddr: guest, size: 0x3000n }).ok);
      yield;
      oks.push(vfio.mapDma({ iova: 0x10000n, vaddr: guest + 0x8000n, size: 0x3000n }).ok);
    });
    expect(sched.run().stuck).toBeNull();
    return { oks, kb: proc.vmLckKb() };
  };
  expect(run("workqueue")).toEqual({ oks: [true, true], kb: 24 });
  expect(run("synchronous")).toEqual({ oks: [true, false], kb: 12 });
});
