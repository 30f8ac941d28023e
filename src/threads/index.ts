/**
 * threads/: Node-only (worker_threads). DMA devices that run in worker threads on a shared
 * Wasm core (src/wasm/core.ts: `WasmCore.createShared()`), for the concurrency the
 * single-threaded model cannot show: device writes racing the dirty harvest. Library
 * modules that browsers load never import this folder; the CLI and tests do.
 */
export { DmaWorkers, Job, CTL, CTL_F, concurrentDma } from "./pool";
