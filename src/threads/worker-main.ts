/**
 * The body of a DMA worker thread. Node-only (worker_threads), and self-contained on
 * purpose: the pool starts it as `new Worker(String(dmaWorkerMain) + call, { eval: true })`,
 * so it runs the same in dist/ and under ts-jest or tsx, with no loader and no file to
 * resolve. It must therefore use nothing from outside its own body (no imports, no
 * module-level names, no closures): only `require`, `WebAssembly` and `Atomics`.
 *
 * A worker runs kernels only (the rule of src/wasm/core.ts): it instantiates the shared
 * build on the owner's shared memory and calls device and bitmap kernels on addresses the
 * owner allocated. Each job comes with its own control block (a SharedArrayBuffer, layout
 * in ./control.ts) through which the owner, which may be blocked in Atomics.wait, sees
 * progress and the result.
 */
export function dmaWorkerMain(): void {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { parentPort, workerData } = require("node:worker_threads") as typeof import("node:worker_threads");
  // Control block slots (Int32Array indices; keep in step with control.ts).
  const STATE = 0; // 0 queued, 1 running, 2 done
  const PROGRESS = 1; // items done
  const STOP = 2; // owner sets 1: stop at the next item
  const STATUS = 3; // 0 ok, or the first fault's status
  const PHASE = 4; // RFC job: owner's step
  const GEN = 5; // RFC job: IOTLB invalidation generation (owner bumps)
  const ACK = 6; // RFC job: last generation the device acknowledged
  const WROTE = 7; // RFC job: 1 the device's write completed
  const F_COUNT = 4; // Float64Array index (byte 32): result count (PTEs dirtied, passes)
  const F_EXTRA = 5; // second result (writes issued, lost dirty updates)

  interface Kernels {
    ptDeviceAccessAtomic(pt: number, iova: number, write: number, out: number): number;
    ptDeviceWriteAtomic(pt: number, iova: number, size: number): number;
    pteDirtyUpdateAtomic(pt: number, pte: number): number;
    setRange(map: number, start: number, n: number): void;
    setRangeAtomic(map: number, start: number, n: number): void;
  }
  // The host's WebAssembly, typed locally (the package declares no global WebAssembly types).
  const WA = (globalThis as unknown as { WebAssembly: { Instance: new (m: object, imports: object) => { exports: unknown } } }).WebAssembly;
  const data = workerData as { module: object; memory: { readonly buffer: ArrayBuffer }; ready: SharedArrayBuffer };
  const inst = new WA.Instance(data.module, { env: { memory: data.memory, allocFault: () => 0 } });
  const x = inst.exports as unknown as Kernels;

  const ready = new Int32Array(data.ready);
  Atomics.store(ready, 0, 1);
  Atomics.notify(ready, 0);

  type Job =
    | { kind: "writes"; ctl: SharedArrayBuffer; pt: number; writes: Float64Array; count: number; repeat: boolean; spreadMs: number }
    | { kind: "bitmap"; ctl: SharedArrayBuffer; map: number; ranges: Uint32Array; count: number; atomic: boolean; repeat: boolean }
    | { kind: "rfc"; ctl: SharedArrayBuffer; pt: number; out: number; iova: number; delay: number };

  function writes(job: Extract<Job, { kind: "writes" }>, c: Int32Array, f: Float64Array): void {
    let dirtied = 0;
    let issued = 0;
    // Pacing: write k is not issued before k/count of spreadMs has passed (a device's DMA
    // spread over the time the owner spends harvesting, instead of one burst up front).
    const t0 = performance.now();
    const perWrite = job.spreadMs > 0 ? job.spreadMs / job.count : 0;
    do {
      for (let k = 0; k < job.count; k++) {
        if ((k & 255) === 0 && Atomics.load(c, STOP) !== 0) break;
        if (perWrite > 0 && (k & 63) === 0) while (performance.now() - t0 < k * perWrite) Atomics.store(c, PROGRESS, k);
        const r = x.ptDeviceWriteAtomic(job.pt, job.writes[2 * k], job.writes[2 * k + 1]);
        issued++;
        if (r < 0) {
          if (Atomics.load(c, STATUS) === 0) Atomics.store(c, STATUS, -r);
          continue;
        }
        dirtied += r;
        if ((k & 1023) === 1023) Atomics.store(c, PROGRESS, k + 1);
      }
      Atomics.store(c, PROGRESS, job.count);
    } while (job.repeat && Atomics.load(c, STOP) === 0);
    f[F_COUNT] = dirtied;
    f[F_EXTRA] = issued;
  }

  function bitmap(job: Extract<Job, { kind: "bitmap" }>, c: Int32Array, f: Float64Array): void {
    let passes = 0;
    do {
      for (let k = 0; k < job.count; k++) {
        if (job.atomic) x.setRangeAtomic(job.map, job.ranges[2 * k], job.ranges[2 * k + 1]);
        else x.setRange(job.map, job.ranges[2 * k], job.ranges[2 * k + 1]);
      }
      passes++;
    } while (job.repeat && Atomics.load(c, STOP) === 0);
    f[F_COUNT] = passes;
  }

  /**
   * The device of the 2022 RFC race: it caches the translation of `iova` with a DMA read
   * (clean: later writes need the hardware's dirty update), tells the owner, waits `delay`
   * spins, then writes once through the cached entry unless the owner's IOTLB
   * invalidation (GEN) reached it first; then acknowledges the invalidation. WROTE says
   * whether the write went through; F_EXTRA counts dirty updates that found no PTE.
   */
  function rfc(job: Extract<Job, { kind: "rfc" }>, c: Int32Array, f: Float64Array): void {
    const dv = new DataView(data.memory.buffer);
    if (x.ptDeviceAccessAtomic(job.pt, job.iova, 0, job.out) !== 0) {
      Atomics.store(c, STATUS, 1);
      return;
    }
    const pte = dv.getUint32(job.out, true);
    const noUpdate = dv.getUint32(job.out + 4, true) !== 0;
    const gen0 = Atomics.load(c, GEN);
    Atomics.store(c, PHASE, 1);
    Atomics.notify(c, PHASE);
    let spin = 0;
    for (let i = 0; i < job.delay; i++) spin += i & 1;
    f[F_COUNT] = spin;
    // IOTLB lookup: the entry is used only while no invalidation has arrived.
    if (Atomics.load(c, GEN) === gen0) {
      let ok = true;
      if (!noUpdate) {
        const u = x.pteDirtyUpdateAtomic(job.pt, pte);
        if (u === 2) ok = false; // write-protected: the write faults
        else if (u === 1) f[F_EXTRA] = 1; // PTE gone: the write lands, its dirty state is lost
      }
      if (ok) Atomics.store(c, WROTE, 1);
    }
    // Acknowledge the invalidation (the owner's iotlb sync waits for this).
    while (Atomics.load(c, GEN) === gen0) Atomics.wait(c, GEN, gen0, 1000);
    Atomics.store(c, ACK, Atomics.load(c, GEN));
    Atomics.notify(c, ACK);
  }

  parentPort!.on("message", (job: Job | { kind: "exit" }) => {
    if (job.kind === "exit") {
      parentPort!.close();
      return;
    }
    const c = new Int32Array(job.ctl, 0, 8);
    const f = new Float64Array(job.ctl, 0, 8);
    Atomics.store(c, STATE, 1);
    if (job.kind === "writes") writes(job, c, f);
    else if (job.kind === "bitmap") bitmap(job, c, f);
    else rfc(job, c, f);
    Atomics.store(c, STATE, 2);
    Atomics.notify(c, STATE);
  });
}
