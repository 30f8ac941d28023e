/** The README's typed-API example, verbatim, so it cannot rot. */
import { WasmCore, PgtableDomain, DmaDevice, DirtyTarget, Bitmap, IOMMU_READ, IOMMU_WRITE } from "../../src";

test("README: create a domain, map, let a device write, harvest a bitmap", () => {
  const core = new WasmCore();
  const dom = PgtableDomain.create(core, { format: "intel-ss", dirtyTracking: true })!;
  dom.setDirtyTracking(true); // SSADE on
  dom.map(0x10_0000, 0x4000_0000, 64 * 4096, IOMMU_READ | IOMMU_WRITE); // 64 pages
  const dev = new DmaDevice();
  dev.attach(dom);
  dev.write(0x10_0000 + 5 * 4096, 8); // the walk sets D; the IOTLB caches it
  const bitmap = Bitmap.create(core, 64)!;
  const target = DirtyTarget.create(core)!;
  target.setBitmap(bitmap, 0x10_0000, 4096); // bit i = IOVA 0x100000 + i*4096
  const gather = dom.newGather()!;
  dom.readAndClearDirty(0x10_0000, 64 * 4096, 0, target, gather);
  dom.iotlbSync(gather); // flush what was cleared
  expect([...bitmap.setBits()]).toEqual([5]);
});
