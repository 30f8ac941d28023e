/**
 * Allocation failures injected into one Wasm core (the kernel's fail_nth idea, one call at
 * a time): `arm(n)` makes the n-th `core.alloc` from now return 0, as an exhausted linear
 * memory would. Every user frame, bitmap, gather and scratch buffer comes from `core.alloc`.
 */
import type { WasmCore } from "../../src/wasm/core";

export class AllocFaults {
  private countdown = 0;
  private ptArmed = false;
  /** Allocations failed so far. */
  injected = 0;

  constructor(private readonly core: WasmCore) {
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

  /** Lets the page-table page allocator hand out only `extra` more table pages. */
  armPageTables(extra: number): void {
    this.core.x.ptSetPageLimit(this.core.x.ptPagesInUse() + extra);
    this.ptArmed = true;
  }

  /** Whether a failure is armed for the current call. */
  get armed(): boolean {
    return this.countdown > 0 || this.ptArmed;
  }

  disarm(): void {
    this.countdown = 0;
    if (this.ptArmed) this.core.x.ptSetPageLimit(0xffff_ffff);
    this.ptArmed = false;
  }
}

/**
 * Pushes everything a world allocates later above 2 GiB of linear memory (where a usize
 * read as a signed i32 turns negative): four 600 MiB blocks, never touched, never freed.
 */
export function occupyLowMemory(core: WasmCore): void {
  for (let i = 0; i < 4; i++) core.alloc(600 * 2 ** 20, false);
}
