/**
 * Issue 11, F2: everything the model keeps in Wasm memory must work when it lives above
 * 2 GiB of linear memory. A usize result read as a signed i32 gave page-table headers and
 * PTE pointers above 2 GiB negative addresses: SET_DIRTY_TRACKING, type1 START and lookups
 * threw RangeError. Reachable without injection by a 4 KiB-leaf guest near 1 TiB.
 */
import { WasmCore } from "../../src/wasm/core";
import { Process } from "../../src/process/process";
import { PgtableDomain, DmaDevice, DMA_OK } from "../../src/iommu/hw";
import { withHardwareDirty } from "../../src/iommu/hw/iommu-domain";
import { vtdPlatform } from "../../src/iommu/platform";
import { VfioIommu } from "../../src/type1/vfio-iommu";
import { DirtyTarget, PT_FORMATS } from "../../src/iommu/pgtable";
import { Bitmap } from "../../src/bitmap";
import { pushPast2GiB } from "./helpers";

describe.each(PT_FORMATS)("page tables above 2 GiB of linear memory (%s)", (format) => {
  test("a page table above 2 GiB maps, tracks, walks and harvests", () => {
    const core = new WasmCore();
    pushPast2GiB(core);
    const dom = PgtableDomain.create(core, { format, dirtyTracking: true })!;
    expect(dom).not.toBeNull();
    expect(dom.table.ptr).toBeGreaterThan(2 ** 31);
    expect(dom.setDirtyTracking(true)).toBe(0);
    expect(dom.map(0x10_0000, 0x4000_0000, 16 * 4096, 3)).toBe(0);
    const leaf = dom.table.lookup(0x10_0000 + 3 * 4096)!;
    expect(leaf.ptePtr).toBeGreaterThan(2 ** 31);
    expect(leaf.phys).toBe(0x4000_0000 + 3 * 4096);
    const dev = new DmaDevice();
    dev.attach(dom);
    expect(dev.write(0x10_0000 + 5 * 4096, 8)).toBe(DMA_OK);
    const bitmap = Bitmap.create(core, 16)!;
    const target = DirtyTarget.create(core)!;
    target.setBitmap(bitmap, 0x10_0000, 4096);
    const g = dom.newGather()!;
    expect(dom.readAndClearDirty(0x10_0000, 16 * 4096, 0, target, g)).toBe(0);
    dom.iotlbSync(g);
    expect([...bitmap.setBits()]).toContain(5);
  });
});

test("type1 START on dirty-capable hardware with the page table above 2 GiB", () => {
  const core = new WasmCore();
  pushPast2GiB(core);
  const proc = new Process({ core });
  const arena = proc.mmap(undefined, 1 << 20).ret;
  const platform = withHardwareDirty(vtdPlatform(), "intel-ss");
  const iommu = VfioIommu.open(core, platform, 3) as VfioIommu;
  expect(iommu.attachGroup(platform.groups[0])).toBe(0);
  expect(iommu.vfioDmaDoMap(proc, { flags: 3, vaddr: BigInt(arena), iova: 0x10_0000n, size: 16n * 4096n })).toBe(0);
  expect(iommu.dirtyStart()).toBe(0);
});
