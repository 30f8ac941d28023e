/**
 * Worker threads that run device kernels on a shared Wasm core. Node-only (worker_threads);
 * nothing under src/ except the CLI imports this folder, so the library stays loadable in
 * a browser.
 *
 * The owner (the thread that created the core with `WasmCore.createShared()`) starts the
 * workers before it runs any kernel (instantiation re-applies the core's data segment),
 * allocates every block they touch, and talks to them synchronously: a job is posted with
 * its own control block (a SharedArrayBuffer), and the owner can block in `Atomics.wait`
 * on it, so the synchronous engines (the migration rounds) use workers without becoming
 * asynchronous.
 */
import { Worker } from "node:worker_threads";
import type { WasmCore } from "../wasm/core";
import type { ConcurrentDma } from "../migrate/backend";
import { Errno } from "../uapi/errno";
import { dmaWorkerMain } from "./worker-main";

/** Control block slots (Int32Array indices); the worker body has the same constants. */
export const CTL = { STATE: 0, PROGRESS: 1, STOP: 2, STATUS: 3, PHASE: 4, GEN: 5, ACK: 6, WROTE: 7 } as const;
/** Float64Array indices of a job's two results. */
export const CTL_F = { COUNT: 4, EXTRA: 5 } as const;
const CTL_BYTES = 64;
const STATE_DONE = 2;

/** How long the owner waits for a worker before calling it dead, milliseconds. */
const WORKER_TIMEOUT_MS = 120_000;

/**
 * The worker's program: dmaWorkerMain's compiled text, called. esbuild (tsx) wraps named
 * functions in `__name(fn, "name")` to keep their names; the shim makes that a no-op.
 */
const WORKER_SOURCE = `"use strict"; var __name = (f) => f; (${dmaWorkerMain.toString()})();`;

/** One posted job: its control block and what it reports. */
export class Job {
  readonly ctl = new SharedArrayBuffer(CTL_BYTES);
  readonly i32 = new Int32Array(this.ctl, 0, 8);
  readonly f64 = new Float64Array(this.ctl, 0, 8);

  /** Items done so far (writes, or 0 for other jobs). */
  get progress(): number {
    return Atomics.load(this.i32, CTL.PROGRESS);
  }

  /** Whether the worker has finished the job. */
  get done(): boolean {
    return Atomics.load(this.i32, CTL.STATE) === STATE_DONE;
  }

  /** Asks a repeating job to stop after its current item. */
  stop(): void {
    Atomics.store(this.i32, CTL.STOP, 1);
  }

  /** Blocks until the job is done; throws if the worker does not finish in time. */
  wait(timeoutMs = WORKER_TIMEOUT_MS): this {
    const t0 = Date.now();
    while (!this.done) {
      const state = Atomics.load(this.i32, CTL.STATE);
      if (Date.now() - t0 > timeoutMs) throw new Error("vfio-sim: a DMA worker did not finish its job");
      Atomics.wait(this.i32, CTL.STATE, state, 100);
    }
    return this;
  }

  /** Blocks until at least `n` items are done or the job has finished. */
  waitProgress(n: number, timeoutMs = WORKER_TIMEOUT_MS): void {
    const t0 = Date.now();
    while (this.progress < n && !this.done) {
      if (Date.now() - t0 > timeoutMs) throw new Error("vfio-sim: a DMA worker made no progress");
      Atomics.wait(this.i32, CTL.STATE, Atomics.load(this.i32, CTL.STATE), 1);
    }
  }

  /** Blocks until `slot` holds a value other than `notValue`. */
  waitFor(slot: number, notValue: number, timeoutMs = WORKER_TIMEOUT_MS): number {
    const t0 = Date.now();
    for (;;) {
      const v = Atomics.load(this.i32, slot);
      if (v !== notValue) return v;
      if (Date.now() - t0 > timeoutMs) throw new Error("vfio-sim: a DMA worker did not answer");
      Atomics.wait(this.i32, slot, v, 100);
    }
  }

  /** 0, or the status of the first fault the job met (1 no translation, 2 permission). */
  get status(): number {
    return Atomics.load(this.i32, CTL.STATUS);
  }

  /** The job's main count (PTEs dirtied, passes made). */
  get count(): number {
    return this.f64[CTL_F.COUNT];
  }

  /** Its second count (writes issued; RFC: 1 when a dirty update found no PTE). */
  get extra(): number {
    return this.f64[CTL_F.EXTRA];
  }
}

/** `n` DMA workers on one shared core. Call `terminate()` when done. */
export class DmaWorkers {
  private readonly workers: Worker[] = [];

  /**
   * Starts `n` workers on `core` (which must come from `WasmCore.createShared()`) and
   * blocks until each has instantiated the core.
   */
  constructor(readonly core: WasmCore, readonly n: number) {
    const memory = core.sharedMemory;
    if (!memory) throw new TypeError("DmaWorkers: the core is not shared (use WasmCore.createShared())");
    if (!Number.isInteger(n) || n < 1 || n > 64) throw new RangeError(`DmaWorkers: n must be 1..64, got ${n}`);
    const ready: SharedArrayBuffer[] = [];
    for (let i = 0; i < n; i++) {
      const r = new SharedArrayBuffer(4);
      ready.push(r);
      const w = new Worker(WORKER_SOURCE, { eval: true, workerData: { module: core.module, memory, ready: r } });
      w.unref();
      this.workers.push(w);
    }
    for (const r of ready) {
      const a = new Int32Array(r);
      const t0 = Date.now();
      while (Atomics.load(a, 0) === 0) {
        if (Date.now() - t0 > WORKER_TIMEOUT_MS) throw new Error("vfio-sim: a DMA worker did not start");
        Atomics.wait(a, 0, 0, 100);
      }
    }
  }

  private post(worker: number, msg: Record<string, unknown>, job: Job): Job {
    this.workers[worker % this.n].postMessage({ ...msg, ctl: job.ctl });
    return job;
  }

  /**
   * Device writes on page table `pt`: pairs (iova, bytes) in `writes[0 .. 2*count)`, each
   * walked with the atomic A/D update; with `repeat`, over and over until `stop()`. The
   * result: `count` PTEs this job moved from clean to dirty, `extra` writes issued. With
   * `spreadMs`, the writes are spread evenly over that much wall time.
   */
  writes(worker: number, pt: number, writes: Float64Array, count: number, repeat = false, spreadMs = 0): Job {
    return this.post(worker, { kind: "writes", pt, writes, count, repeat, spreadMs }, new Job());
  }

  /**
   * Software dirty-bitmap updates: ranges (start, n) in `ranges[0 .. 2*count)` set in the
   * bitmap at `map`, with the atomic kernel or the plain one; with `repeat`, until `stop()`.
   */
  bitmap(worker: number, map: number, ranges: Uint32Array, count: number, atomic: boolean, repeat = false): Job {
    return this.post(worker, { kind: "bitmap", map, ranges, count, atomic, repeat }, new Job());
  }

  /**
   * The RFC race's device (see worker-main.ts): caches `iova`'s translation with a read,
   * sets PHASE to 1, spins `delay`, writes once unless invalidated, then acknowledges the
   * next invalidation. `out` is a 24-byte block the owner allocated for it.
   */
  rfcDevice(worker: number, pt: number, out: number, iova: number, delay: number): Job {
    return this.post(worker, { kind: "rfc", pt, out, iova, delay }, new Job());
  }

  /** Stops every worker. */
  async terminate(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.terminate()));
    this.workers.length = 0;
  }
}

/**
 * The migration engine's ConcurrentDma on these workers: device `i`'s batches go to worker
 * `i mod n`, in order. A write that faults ends as -EFAULT (as ModelIommufd.write).
 */
export function concurrentDma(workers: DmaWorkers): ConcurrentDma {
  return {
    start(device, pageTable, writes, count, spreadMs) {
      const job = workers.writes(device, pageTable, writes, count, false, spreadMs);
      return {
        waitProgress: (n) => job.waitProgress(n),
        wait: () => (job.wait().status === 0 ? 0 : -Errno.EFAULT),
      };
    },
  };
}
