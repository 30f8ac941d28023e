/**
 * Allocation failures injected into one Wasm core (the kernel's fail_nth idea, one call at
 * a time): `arm(n)` makes the n-th `core.alloc` from now return 0, as an exhausted linear
 * memory would. Every user frame, bitmap, gather and scratch buffer comes from `core.alloc`.
 */
import type { WasmCore } from "../../src/wasm/core";

export class AllocFaults {
  private countdown = 0;
  /** Allocations failed so far. */
  injected = 0;

  constructor(core: WasmCore) {
    const real = core.alloc.bind(core);
    core.alloc = (size: number, zero?: boolean): number => {
      if (this.countdown > 0 && --this.countdown === 0) {
        this.injected++;
        return 0;
      }
      return real(size, zero);
    };
  }

  /** Fails the n-th allocation from now (n >= 1). */
  arm(n: number): void {
    this.countdown = n;
  }

  disarm(): void {
    this.countdown = 0;
  }
}
