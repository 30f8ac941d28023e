/**
 * `npm run bench:memory`: what a modelled guest costs. Maps guests of several sizes into a
 * type1 container the way a VMM does (one MAP_DMA per RAM region), starts dirty tracking,
 * and reports the growth of Wasm linear memory and of the JS heap, per GiB of guest.
 * Run with --expose-gc for steadier JS-heap figures (the npm script does).
 */
import { WasmCore } from "../src/wasm/core";
import { Process } from "../src/process/process";
import { vtdPlatform } from "../src/iommu/platform";
import { withHardwareDirty } from "../src/iommu/hw/iommu-domain";
import { VfioIommu } from "../src/type1/vfio-iommu";

const GiB = 1 << 30;
const gc = (globalThis as { gc?: () => void }).gc ?? (() => undefined);

function heap(): number {
  gc();
  return process.memoryUsage().heapUsed;
}

interface Row {
  domain: string;
  guestGiB: number;
  wasmMiB: number;
  jsHeapMiB: number;
  wasmPerGiB: number;
  mapMs: number;
}

function measure(hw: boolean, guestGiB: number, smallLeaves = false): Row {
  const core = new WasmCore();
  const proc = new Process({ core });
  // The oracle's VT-d machine, with 48-bit addresses (QEMU intel-iommu,aw-bits=48): a 1 TiB
  // guest does not fit the 39-bit (512 GiB) default.
  const vtd48 = vtdPlatform();
  vtd48.iommu.aperture = { start: 0n, end: (1n << 48n) - 1n };
  const platform = hw ? withHardwareDirty(vtd48, "intel-ss") : vtd48;
  const iommu = VfioIommu.open(core, platform, 3) as VfioIommu;
  if (iommu.attachGroup(platform.groups[0])) throw new Error("attach failed");
  const wasm0 = core.memoryBytes;
  const heap0 = heap();
  const t0 = performance.now();
  // RAM as a VMM lays it out: up to 3 GiB below the 4 GiB hole, the rest from 4 GiB up.
  const low = Math.min(guestGiB, 3);
  const regions: Array<[number, number]> = [[0, low * GiB]];
  if (guestGiB > 3) regions.push([4 * GiB, (guestGiB - 3) * GiB]);
  for (const [iova, size] of regions) {
    // smallLeaves: guest RAM one page off huge-page alignment, so only 4 KiB leaves fit.
    const mapped = proc.mmap(undefined, size + (smallLeaves ? 4096 : 0)).ret;
    if (mapped < 0) throw new Error("mmap failed");
    const va = mapped + (smallLeaves ? 4096 : 0);
    const r = iommu.vfioDmaDoMap(proc, { flags: 3, vaddr: BigInt(va), iova: BigInt(iova), size: BigInt(size) });
    if (r) throw new Error(`MAP_DMA failed: ${r}`);
  }
  if (iommu.dirtyStart()) throw new Error("START failed");
  const mapMs = performance.now() - t0;
  const wasm = core.memoryBytes - wasm0;
  const js = heap() - heap0;
  const domain = hw ? `page table, ${smallLeaves ? "4K" : "huge"} leaves` : "range map (type1 default)";
  return { domain, guestGiB, wasmMiB: wasm / 2 ** 20, jsHeapMiB: js / 2 ** 20, wasmPerGiB: wasm / guestGiB / 1024, mapMs };
}

const rows: Row[] = [];
for (const hw of [false, true]) for (const g of [1, 64, 1024]) rows.push(measure(hw, g));
for (const g of [1, 16]) rows.push(measure(true, g, true));
console.log("guest   domain                            Wasm growth   per GiB    JS heap   map+START");
for (const r of rows) {
  console.log(
    `${String(r.guestGiB).padStart(5)} G  ${r.domain.padEnd(33)} ${r.wasmMiB.toFixed(1).padStart(8)} MiB ${r.wasmPerGiB.toFixed(1).padStart(7)} KiB ${r.jsHeapMiB.toFixed(2).padStart(7)} MiB ${r.mapMs.toFixed(0).padStart(7)} ms`,
  );
}
console.log(`peak RSS ${(process.resourceUsage().maxRSS / 1024).toFixed(0)} MiB`);
