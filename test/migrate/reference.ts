/**
 * A naive, independent reference for the device backends: plain JS Sets of page numbers
 * and the kernel's reporting rules written out directly, no Wasm and no bitmap kernels.
 * Only for small guests.
 */
import type { BackendTable, DeviceBackend, HarvestSink } from "../../src/migrate/backend";
import type { GuestLayout } from "../../src/migrate/layout";
import type { DeviceSpec } from "../../src/migrate/scenario";

class ReferenceBackend implements DeviceBackend {
  readonly fidelity = "stand-in" as const;
  readonly description = "test reference (JS Sets)";
  readonly writer = this;
  readonly harvester = this;
  readonly call = "reference harvest";
  readonly finalCall = "reference final harvest";
  private dirty = new Set<number>();
  private reported = new Set<number>();
  private readonly pinned = new Set<number>();

  constructor(readonly spec: DeviceSpec, private readonly layout: GuestLayout, pinnedRuns: ReadonlyArray<[number, number]>) {
    for (const [p, n] of pinnedRuns) for (let i = 0; i < n; i++) this.pinned.add(p + i);
  }
  setup(): number {
    return 0;
  }
  start(): number {
    this.dirty = new Set();
    return 0;
  }
  write(page: number, n: number): number {
    const ppl = this.layout.pagesPerLeaf;
    for (let p = page; p < page + n; p++) {
      switch (this.spec.kind) {
        case "type1":
          break;
        case "emulated":
          if (!this.pinned.has(p)) this.dirty.add(p);
          break;
        default: {
          // Leaf granularity, leaves counted from the region start.
          const r = this.layout.regionOf(p);
          const first = r.ramPage + Math.floor((p - r.ramPage) / ppl) * ppl;
          for (let q = first; q < first + ppl; q++) this.dirty.add(q);
        }
      }
    }
    return 0;
  }
  harvest(): number {
    const out = new Set(this.dirty);
    if (this.spec.kind === "type1") for (let p = 0; p < this.layout.ramPages; p++) out.add(p);
    if (this.spec.kind === "emulated") for (const p of this.pinned) out.add(p);
    this.reported = out;
    this.dirty = new Set();
    return 0;
  }
  finalHarvest(): number {
    return this.harvest();
  }
  collect(sink: HarvestSink): void {
    for (const r of this.layout.regions) {
      const bytes = new Uint8Array(Math.ceil(r.pages / 64) * 8);
      for (const p of this.reported) if (p >= r.ramPage && p < r.ramPage + r.pages) bytes[(p - r.ramPage) >> 3] |= 1 << ((p - r.ramPage) & 7);
      sink(r.ramPage, bytes, r.pages);
    }
  }
  dispose(): void {}
}

/** The reference for every device kind. */
export const REFERENCE_BACKENDS: BackendTable = {
  type1: (s, l, _sc, pinned) => new ReferenceBackend(s, l, pinned),
  emulated: (s, l, _sc, pinned) => new ReferenceBackend(s, l, pinned),
  "hw-type1": (s, l, _sc, pinned) => new ReferenceBackend(s, l, pinned),
  iommufd: (s, l, _sc, pinned) => new ReferenceBackend(s, l, pinned),
  mlx5: (s, l, _sc, pinned) => new ReferenceBackend(s, l, pinned),
};

/**
 * Wraps a backend table so every harvest loses some bits on their way to the VMM: in each
 * region, every `every`-th set bit is dropped. A harvest bug the ledger must catch.
 */
export function droppingBits(table: BackendTable, every: number, onlyFinal = false): BackendTable {
  const wrap = (make: BackendTable[keyof BackendTable]): BackendTable[keyof BackendTable] => (spec, layout, scenario, pinned) => {
    const b = make(spec, layout, scenario, pinned);
    let final = false;
    const h = b.harvester;
    const harvester = {
      call: h.call,
      finalCall: h.finalCall,
      start: () => h.start(),
      harvest: () => ((final = false), h.harvest()),
      finalHarvest: () => ((final = true), h.finalHarvest()),
      collect(sink: HarvestSink): void {
        h.collect((page, bits, nbits) => {
          if (onlyFinal && !final) return sink(page, bits, nbits);
          const copy = bits.slice();
          let seen = 0;
          for (let i = 0; i < nbits; i++) {
            if ((copy[i >> 3] >> (i & 7)) & 1 && ++seen % every === 0) copy[i >> 3] &= ~(1 << (i & 7));
          }
          sink(page, copy, nbits);
        });
      },
    };
    return { ...b, spec: b.spec, fidelity: b.fidelity, description: b.description, setup: () => b.setup(), writer: b.writer, harvester, dispose: () => b.dispose() };
  };
  return { type1: wrap(table.type1), emulated: wrap(table.emulated), "hw-type1": wrap(table["hw-type1"]), iommufd: wrap(table.iommufd), mlx5: wrap(table.mlx5) };
}
