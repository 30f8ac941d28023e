/**
 * Fault injection at every allocation of a Wasm core: the kernel's `iommufd_fail_nth` idea.
 *
 * Each WasmCore owns one `FaultInjector`. Every allocation the model makes asks it first:
 * heap blocks through `WasmCore.alloc` (user-memory frames, dirty bitmaps, gathers, dirty
 * targets, scratch buffers), and, through the core's `env.allocFault` import, the two made
 * inside Wasm: I/O page-table pages and page-table headers. `failNth(n)` makes the n-th
 * allocation from now fail, exactly as if linear memory could not grow: the site returns
 * its ENOMEM value (0 / null) and the caller must turn that into an errno and leave its
 * state as it was. Tests sweep n = 1, 2, ... until a scenario completes without reaching
 * the fault (test/reliability/fail-nth.test.ts).
 *
 * Disarmed, the injector costs one comparison per JS allocation and nothing per table page
 * (the Wasm side calls out only while armed).
 */

/** Where an allocation comes from. */
export type AllocKind = "heap" | "table-page" | "pt-header";

/** Codes the Wasm core passes to env.allocFault (assembly/runtime/fault.ts). */
export const FAULT_KIND_BY_CODE: readonly AllocKind[] = ["heap", "table-page", "pt-header"];

/** Counts allocations and fails the chosen one. */
export class FaultInjector {
  /** Allocations counted since the injector was last armed (or reset). */
  count = 0;
  /** Allocations failed on purpose since the injector was last armed. */
  hits = 0;
  private failAt = 0;
  private observer: ((kind: AllocKind) => void) | null = null;
  /** Set by the WasmCore: switches the core's import hook on while anything listens. */
  onArmedChange: (armed: boolean) => void = () => {};

  /** Whether allocations are being counted (a fault is pending or an observer listens). */
  get armed(): boolean {
    return this.failAt !== 0 || this.observer !== null;
  }

  /**
   * Makes the n-th allocation from now fail (n >= 1), once; resets `count` and `hits`.
   * `failNth(0)` disarms.
   */
  failNth(n: number): void {
    if (!Number.isSafeInteger(n) || n < 0) throw new RangeError(`failNth: n must be a non-negative integer, got ${String(n)}`);
    this.failAt = n;
    this.count = 0;
    this.hits = 0;
    this.onArmedChange(this.armed);
  }

  /** Calls `fn` for every allocation (to count or locate allocation sites); null stops. */
  observe(fn: ((kind: AllocKind) => void) | null): void {
    this.observer = fn;
    this.count = 0;
    this.onArmedChange(this.armed);
  }

  /** Asked by every allocation site: true means "fail this one". */
  shouldFail(kind: AllocKind): boolean {
    if (this.failAt === 0 && this.observer === null) return false;
    this.count++;
    this.observer?.(kind);
    if (this.count === this.failAt) {
      this.hits++;
      return true;
    }
    return false;
  }
}
