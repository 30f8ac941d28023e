/**
 * Reproducers of fuzz findings that turned out to be the checks' fault, not the model's:
 * each must replay without a finding (a changed check that misfires again fails here).
 * The model's side of each is pinned down by a deterministic test named in its entry.
 */
import { replayRepro } from "./targets";
import { bound } from "./trace";

const REPROS: Array<[string, string]> = [
  [
    // test/type1/replay-diverged-pins.test.ts
    "type1 seed 4346: 6.1 external pins on the huge zero page, PMD split, replay maps reserved pages (locked_vm 4, no run page charged)",
    "{\"target\":\"type1\",\"cfg\":{\"platform\":\"vtd\",\"hw\":null,\"profile\":\"linux-6.1\",\"bitmapCopy\":\"simd\",\"setup\":\"emulated\",\"prefill\":0,\"high\":false},\"ops\":[{\"k\":\"map\",\"at\":\"rocontent\",\"argsz\":32,\"flags\":1,\"vaddr\":{\"$big\":\"0x100003ff0000\"},\"iova\":{\"$big\":\"0x0\"},\"size\":{\"$big\":\"0xd000\"}},{\"k\":\"register\"},{\"k\":\"pin\",\"iova\":{\"$big\":\"0x2000\"},\"npage\":4,\"prot\":1},{\"k\":\"dirty\",\"at\":\"ok\",\"argsz\":48,\"flags\":4,\"iova\":{\"$big\":\"0x0\"},\"size\":{\"$big\":\"0xd000\"},\"bm\":{\"pgsize\":{\"$big\":\"0x1000\"},\"bsize\":{\"$big\":\"0x8\"},\"where\":\"straddle\",\"off\":{\"$big\":\"0x8000\"}}},{\"k\":\"attach\",\"g\":0}]}",
  ],
  [
    // test/type1/unaligned-pins.test.ts
    "type1 seed 90210: a pin at an unaligned IOVA below the dma start; UNMAP's notifier must have the driver unpin it",
    "{\"target\":\"type1\",\"cfg\":{\"platform\":\"vtd\",\"hw\":null,\"profile\":\"mainline\",\"bitmapCopy\":\"word\",\"setup\":\"none\",\"prefill\":33554432,\"high\":false},\"ops\":[{\"k\":\"attach\",\"g\":2},{\"k\":\"setIommu\",\"type\":3},{\"k\":\"register\"},{\"k\":\"map\",\"at\":\"ok\",\"argsz\":32,\"flags\":3,\"vaddr\":{\"$big\":\"0x100000d6c000\"},\"iova\":{\"$big\":\"0x3130000\"},\"size\":{\"$big\":\"0x3a000\"}},{\"k\":\"pin\",\"iova\":{\"$big\":\"0x312f072\"},\"npage\":7,\"prot\":3},{\"k\":\"unmap\",\"at\":\"ok\",\"argsz\":24,\"flags\":2,\"iova\":{\"$big\":\"0x0\"},\"size\":{\"$big\":\"0x0\"},\"bm\":{\"pgsize\":{\"$big\":\"0x1000\"},\"bsize\":{\"$big\":\"0x0\"},\"where\":\"ok\",\"off\":{\"$big\":\"0xd000\"}}}]}",
  ],
  [
    // test/type1/unaligned-pins.test.ts
    "type1 seed 20261130: 6.1, a page pinned below the dma start (unaligned IOVA), then a domain's replay: locked_vm counts that page too",
    "{\"target\":\"type1\",\"cfg\":{\"platform\":\"vtd\",\"hw\":\"intel-ss\",\"profile\":\"linux-6.1\",\"bitmapCopy\":\"simd\",\"setup\":\"standard\",\"prefill\":2097152,\"high\":true},\"ops\":[{\"k\":\"attach\",\"g\":2},{\"k\":\"map\",\"at\":\"ok\",\"argsz\":32,\"flags\":2,\"vaddr\":{\"$big\":\"0x100001b28000\"},\"iova\":{\"$big\":\"0xd80000\"},\"size\":{\"$big\":\"0x3e000\"}},{\"k\":\"register\"},{\"k\":\"detach\",\"g\":0},{\"k\":\"pin\",\"iova\":{\"$big\":\"0xd7f3d5\"},\"npage\":3,\"prot\":2},{\"k\":\"attach\",\"g\":0}]}",
  ],
  [
    // test/type1/unaligned-pins.test.ts
    "type1 seed 20261130, later: that page unpinned once the domain exists keeps its charge (do_accounting is false), so the recount of runs no longer explains locked_vm",
    "{\"target\":\"type1\",\"cfg\":{\"platform\":\"vtd\",\"hw\":\"intel-ss\",\"profile\":\"linux-6.1\",\"bitmapCopy\":\"simd\",\"setup\":\"standard\",\"prefill\":2097152,\"high\":true},\"ops\":[{\"k\":\"attach\",\"g\":2},{\"k\":\"map\",\"at\":\"ok\",\"argsz\":32,\"flags\":2,\"vaddr\":{\"$big\":\"0x100001b28000\"},\"iova\":{\"$big\":\"0xd80000\"},\"size\":{\"$big\":\"0x3e000\"}},{\"k\":\"register\"},{\"k\":\"detach\",\"g\":0},{\"k\":\"pin\",\"iova\":{\"$big\":\"0xd7f3d5\"},\"npage\":3,\"prot\":2},{\"k\":\"attach\",\"g\":0},{\"k\":\"unpin\",\"iova\":{\"$big\":\"0xd7f3d5\"},\"npage\":1}]}",
  ],
];

describe("fixed fuzz findings replay clean", () => {
  it.each(REPROS)("%s", (_name, json) => {
    expect(replayRepro(json)).toBeNull();
  });
});

describe("the trace generator bounds a line's own cost", () => {
  // trace seed 777002: a mutated `maps ... count=unlimited` mapped up to the 65,535-entry
  // limit, 12 s under the per-ioctl state checks (a "slow" finding of the harness's own making).
  it.each([
    ["maps flags=3 vaddr=+0xc00000 iova=0x319000 size=0x2000 count=unlimited vaddr_step=0", "count=0x100"],
    ["maps flags=3 vaddr=+0xc00000 iova=0x319000 size=0x2000 count=-1", "count=0x100"],
    ["maps flags=3 vaddr=+0xc00000 iova=0x319000 size=0x2000 count=300", "count=0x100"],
    ["maps flags=3 vaddr=+0xc00000 iova=0x319000 size=0x2000 count=3", "count=3"],
    ["peek addr=+0 size=unlimited", "size=0x100000"],
  ])("%s", (line, want) => {
    expect(bound(line)).toContain(want);
  });
});
