/**
 * Type1 on a dirty-tracking IOMMU (model extension): with page-table domains that have
 * dirty ops, VFIO_IOMMU_DIRTY_PAGES GET_BITMAP and unmap-with-bitmap report the pages a
 * device actually wrote; on the stock platform the same calls report every mapped page.
 * Driven through the trace runner (the same code path as the Linux 6.1 recordings).
 */
import { WasmCore } from "../../src/wasm/core";
import { TraceRunner, parseTrace, ARENA_BASE } from "../../src/trace";
import { vtdPlatform, smmuPlatform, Platform } from "../../src/iommu";
import { PgtableIommuDomain, dirtyTrackingPlatform } from "../../src/iommu/hw/iommu-domain";
import { DmaDevice, DMA_OK } from "../../src/iommu/hw";
import { PtFormat } from "../../src/iommu/pgtable";

const IOVA = 0x100000;
const G = 4096;
const BM = ARENA_BASE + 0x3f00000n;

function setup(platform: Platform): { runner: TraceRunner; run: (line: string) => string } {
  const runner = new TraceRunner({ platform });
  expect(runner.start()).toBe("");
  const run = (text: string): string => parseTrace(text).map((l) => runner.step(l).output).join("");
  return { runner, run };
}

function bits(runner: TraceRunner, addr: bigint, bytes: number): number[] {
  const b = runner.proc.read(addr, bytes)!;
  const out: number[] = [];
  for (let i = 0; i < bytes * 8; i++) if ((b[i >> 3] >> (i & 7)) & 1) out.push(i);
  return out;
}

const getLine = `dirty flags=4 iova=${"0x" + IOVA.toString(16)} size=0x20000 pgsize=0x1000 bitmap_size=8 data=+0x3f00000`;

describe.each([
  ["intel-ss", vtdPlatform],
  ["amd-v1", vtdPlatform],
  ["arm-lpae-s1", smmuPlatform],
] as const)("%s page tables", (format, base) => {
  test("GET_BITMAP and unmap-with-bitmap report the written pages only", () => {
    const { runner, run } = setup(dirtyTrackingPlatform(base(), format as PtFormat, new WasmCore()));
    run(`map vaddr=+0x0 iova=${"0x" + IOVA.toString(16)} size=0x20000`);
    run("dirty flags=1");
    const dom = runner.iommu!.domainList[0].domain as PgtableIommuDomain;
    expect(dom).toBeInstanceOf(PgtableIommuDomain);
    const dev = new DmaDevice();
    dev.attach(dom.hw);
    // ARM maps start writable-dirty: the first report after START has every page.
    if (format === "arm-lpae-s1") {
      run("fill addr=+0x3f00000 size=0x100 byte=0x0");
      run(getLine);
      expect(bits(runner, BM, 4).length).toBe(32);
    }
    expect(dev.write(IOVA + 3 * G, 8)).toBe(DMA_OK);
    expect(dev.write(IOVA + 9 * G + 100, 4)).toBe(DMA_OK);
    expect(dev.write(IOVA + 31 * G, 1)).toBe(DMA_OK);
    run("fill addr=+0x3f00000 size=0x100 byte=0x0");
    expect(run(getLine)).toMatch(/= 0 OK/);
    expect(bits(runner, BM, 4)).toEqual([3, 9, 31]);
    // Cleared by the read (and the IOTLB flushed): nothing new.
    run("fill addr=+0x3f00000 size=0x100 byte=0x0");
    run(getLine);
    expect(bits(runner, BM, 4)).toEqual([]);
    // A write after the flush walks again and sets the dirty bit again.
    expect(dev.write(IOVA + 9 * G, 8)).toBe(DMA_OK);
    expect(dev.write(IOVA + 20 * G, 8)).toBe(DMA_OK);
    run("fill addr=+0x3f00100 size=0x100 byte=0x0");
    expect(run(`unmap flags=1 argsz=48 iova=${"0x" + IOVA.toString(16)} size=0x20000 pgsize=0x1000 bitmap_size=8 data=+0x3f00100`)).toMatch(/= 0 OK/);
    expect(bits(runner, BM + 0x100n, 4)).toEqual([9, 20]);
    expect(dev.write(IOVA, 8)).not.toBe(DMA_OK);
  });

  test("the stock platform reports every mapped page for the same calls", () => {
    const { runner, run } = setup(base());
    run(`map vaddr=+0x0 iova=${"0x" + IOVA.toString(16)} size=0x20000`);
    run("dirty flags=1");
    run("fill addr=+0x3f00000 size=0x100 byte=0x0");
    run(getLine);
    expect(bits(runner, BM, 4).length).toBe(32);
  });
});
