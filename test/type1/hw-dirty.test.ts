/**
 * type1 on dirty-capable hardware (a model extension; Linux's type1 never reads IOMMU dirty
 * bits): a device writes through the page tables, and GET_BITMAP / unmap-with-bitmap report
 * exactly the pages it wrote since the last harvest, checked against a plain Set of pages.
 */
import { WasmCore } from "../../src/wasm/core";
import { Process } from "../../src/process/process";
import { vtdPlatform } from "../../src/iommu/platform";
import { withHardwareDirty, HwIommuDomain } from "../../src/iommu/hw/iommu-domain";
import { DmaDevice, DMA_OK, DMA_FAULT_NOT_PRESENT } from "../../src/iommu/hw/device";
import { VfioIommu } from "../../src/type1/vfio-iommu";
import { PT_FORMATS, PtFormat } from "../../src/iommu/pgtable";
import { Rng } from "../../src/util/random";

const PAGE = 4096;
const READ_WRITE = 3;
const UNMAP_GET_DIRTY_BITMAP = 1;

interface Dma {
  iova: number;
  pages: number;
}

function setup(format: PtFormat | null) {
  const core = new WasmCore();
  const proc = new Process({ core });
  const arena = proc.mmap(undefined, 64 << 20).ret;
  expect(arena).toBeGreaterThan(0);
  const platform = format ? withHardwareDirty(vtdPlatform(), format) : vtdPlatform();
  const iommu = VfioIommu.open(core, platform, 3) as VfioIommu;
  expect(iommu.attachGroup(platform.groups[0])).toBe(0);
  const dev = new DmaDevice();
  const domain = iommu.domainList[0].domain;
  if (domain instanceof HwIommuDomain) dev.attach(domain.hw);
  const ubuf = BigInt(arena + (48 << 20));
  /** GET_BITMAP over [base, base+pages) into a zeroed user buffer; returns the set bits. */
  const get = (base: number, pages: number): number[] | number => {
    proc.fill(ubuf, 1 << 16, 0);
    const r = iommu.dirtyGetBitmap(proc, BigInt(base), BigInt(pages * PAGE), { pgsize: BigInt(PAGE), size: BigInt(Math.ceil(pages / 64) * 8), data: ubuf });
    return r < 0 ? r : bitsOf(proc.read(ubuf, Math.ceil(pages / 64) * 8)!, pages);
  };
  const unmapWithBitmap = (d: Dma): number[] | number => {
    proc.fill(ubuf, 1 << 16, 0);
    const args = { flags: UNMAP_GET_DIRTY_BITMAP, iova: BigInt(d.iova), size: BigInt(d.pages * PAGE) };
    const r = iommu.vfioDmaDoUnmap(proc, args, { pgsize: BigInt(PAGE), size: BigInt(Math.ceil(d.pages / 64) * 8), data: ubuf });
    return r < 0 ? r : bitsOf(proc.read(ubuf, Math.ceil(d.pages / 64) * 8)!, d.pages);
  };
  const map = (d: Dma, vaddrPage: number) =>
    iommu.vfioDmaDoMap(proc, { flags: READ_WRITE, vaddr: BigInt(arena + vaddrPage * PAGE), iova: BigInt(d.iova), size: BigInt(d.pages * PAGE) });
  return { core, proc, iommu, dev, get, unmapWithBitmap, map };
}

function bitsOf(bytes: Uint8Array, nbits: number): number[] {
  const out: number[] = [];
  for (let i = 0; i < nbits; i++) if ((bytes[i >> 3] >> (i & 7)) & 1) out.push(i);
  return out;
}

describe.each(PT_FORMATS)("type1 GET_BITMAP on dirty-capable hardware (%s)", (format) => {
  test("random writes, harvests and unmaps agree with a Set of written pages", () => {
    const rng = new Rng(0x7e1 + PT_FORMATS.indexOf(format));
    const t = setup(format);
    // Mappings of at most 255 pages at page (not 2 MiB) aligned IOVAs: every leaf is 4 KiB,
    // so one write dirties exactly one page.
    let dmas: Dma[] = [];
    let nextIova = 0x10_0000 + PAGE;
    let vaddrPage = 0;
    for (let i = 0; i < 8; i++) {
      const d = { iova: nextIova, pages: rng.range(1, 255) };
      expect(t.map(d, vaddrPage)).toBe(0);
      dmas.push(d);
      vaddrPage += d.pages + 1;
      nextIova += (d.pages + rng.range(1, 40)) * PAGE;
    }
    expect(t.iommu.dirtyStart()).toBe(0);
    const written = new Set<number>(); // page numbers (iova / PAGE) written since their last harvest
    for (let step = 0; step < 400; step++) {
      const op = rng.int(10);
      if (op < 6 && dmas.length) {
        const d = dmas[rng.int(dmas.length)];
        const page = d.iova / PAGE + rng.int(d.pages);
        const len = rng.range(1, 3 * PAGE);
        const lastPage = Math.min(Math.floor((page * PAGE + len - 1) / PAGE), d.iova / PAGE + d.pages - 1);
        expect(t.dev.write(page * PAGE, Math.min(len, (lastPage + 1) * PAGE - page * PAGE))).toBe(DMA_OK);
        for (let p = page; p <= lastPage; p++) written.add(p);
      } else if (op === 6) {
        // A write to an unmapped IOVA faults and dirties nothing.
        expect(t.dev.write(nextIova + PAGE * 7, 8)).toBe(DMA_FAULT_NOT_PRESENT);
      } else if (op < 9 && dmas.length) {
        // GET_BITMAP from a gap (or a dma start) before dma i to the end of dma j.
        const i = rng.int(dmas.length);
        const j = i + rng.int(dmas.length - i);
        const prevEnd = i > 0 ? dmas[i - 1].iova + dmas[i - 1].pages * PAGE : dmas[i].iova - PAGE;
        const base = prevEnd + rng.int((dmas[i].iova - prevEnd) / PAGE + 1) * PAGE;
        const end = dmas[j].iova + dmas[j].pages * PAGE;
        const got = t.get(base, (end - base) / PAGE);
        const want = [...written].filter((p) => p * PAGE >= base && p * PAGE < end).map((p) => p - base / PAGE).sort((a, b) => a - b);
        expect(got).toEqual(want);
        for (let k = i; k <= j; k++) for (let p = dmas[k].iova / PAGE; p < dmas[k].iova / PAGE + dmas[k].pages; p++) written.delete(p);
      } else if (dmas.length > 1) {
        const k = rng.int(dmas.length);
        const d = dmas[k];
        const got = t.unmapWithBitmap(d);
        const want = [...written].filter((p) => p >= d.iova / PAGE && p < d.iova / PAGE + d.pages).map((p) => p - d.iova / PAGE).sort((a, b) => a - b);
        expect(got).toEqual(want);
        for (let p = d.iova / PAGE; p < d.iova / PAGE + d.pages; p++) written.delete(p);
        dmas = dmas.filter((x) => x !== d);
        // The device can no longer reach it.
        expect(t.dev.write(d.iova, 1)).toBe(DMA_FAULT_NOT_PRESENT);
      }
    }
  });

  test("only writes after START are reported, and STOP then START starts clean", () => {
    const t = setup(format);
    const d = { iova: 0x20_0000 + PAGE, pages: 64 };
    expect(t.map(d, 0)).toBe(0);
    expect(t.dev.write(d.iova + 3 * PAGE, 1)).toBe(DMA_OK); // before tracking
    expect(t.iommu.dirtyStart()).toBe(0);
    expect(t.get(d.iova, 64)).toEqual([]);
    expect(t.dev.write(d.iova + 5 * PAGE, 1)).toBe(DMA_OK);
    expect(t.iommu.dirtyStop()).toBe(0);
    expect(t.dev.write(d.iova + 9 * PAGE, 1)).toBe(DMA_OK); // while stopped
    expect(t.iommu.dirtyStart()).toBe(0);
    expect(t.dev.write(d.iova + 7 * PAGE, 1)).toBe(DMA_OK);
    expect(t.get(d.iova, 64)).toEqual([7]);
    expect(t.get(d.iova, 64)).toEqual([]); // clear-on-read
  });
});

test("a dirty 2 MiB leaf is reported as all of its pages (hardware granularity)", () => {
  const t = setup("intel-ss");
  // 2 MiB-aligned IOVA and vaddr (the arena is 2 MiB aligned in the model's THP backing).
  const d = { iova: 0x4000_0000, pages: 1024 };
  expect(t.map(d, 512)).toBe(0);
  expect(t.iommu.dirtyStart()).toBe(0);
  expect(t.dev.write(d.iova + 600 * PAGE, 1)).toBe(DMA_OK);
  // The run is physically contiguous and 2 MiB aligned, so the write landed in a 2 MiB
  // leaf: the hardware can only say "this leaf is dirty", i.e. all 512 of its pages.
  expect(t.get(d.iova, d.pages)).toEqual(Array.from({ length: 512 }, (_, i) => 512 + i));
});

test("without hardware dirty tracking, an IOMMU-backed device still makes every mapped page dirty (Linux 6.1)", () => {
  const t = setup(null);
  const d = { iova: 0x10_0000, pages: 70 };
  expect(t.map(d, 0)).toBe(0);
  expect(t.iommu.dirtyStart()).toBe(0);
  expect(t.get(d.iova, d.pages)).toEqual(Array.from({ length: 70 }, (_, i) => i));
});

test("every RAM region gets huge leaves, not only the first (physical bases stay huge-page aligned)", () => {
  const t = setup("intel-ss");
  const GiB = 1 << 30;
  // Two regions as a VMM maps RAM around the 4 GiB hole; each mmap gets its own physical
  // range. With a misaligned second base, the IOMMU could only use 4 KiB leaves there.
  for (const [iova, size] of [[0, GiB], [4 * GiB, 2 * GiB]]) {
    const va = t.proc.mmap(undefined, size).ret;
    expect(t.iommu.vfioDmaDoMap(t.proc, { flags: READ_WRITE, vaddr: BigInt(va), iova: BigInt(iova), size: BigInt(size) })).toBe(0);
  }
  const hw = (t.iommu.domainList[0].domain as HwIommuDomain).hw;
  for (const iova of [0, 4 * GiB, 5 * GiB]) expect(hw.table.lookup(iova)?.leafSize).toBe(GiB);
});
