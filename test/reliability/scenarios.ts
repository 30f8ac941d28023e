/**
 * The fixed scenarios of the fail_nth sweep (issue 11, deliverable 3). Each is a list of
 * kernel calls on a fresh world; device writes between them are steps too (they allocate
 * nothing, so the sweep passes over them at once). Every mapping is written guest memory;
 * every type1 harvest goes into a user page never written before, so copy_to_user has to
 * fault a page in (a frame allocation) on the way.
 */
import { WasmCore } from "../../src/wasm/core";
import { vtdPlatform, type Platform } from "../../src/iommu/platform";
import { withHardwareDirty, HwIommuDomain } from "../../src/iommu/hw/iommu-domain";
import { DmaDevice } from "../../src/iommu/hw/device";
import type { PtFormat } from "../../src/iommu/pgtable";
import type { Type1Options } from "../../src/type1/options";
import * as U from "../../src/iommufd/uapi";
import { VhostVdpa, VhostIotlbApi, fileWriter, VHOST_SET_OWNER, VhostAccess } from "../../src";
import { IommufdWorld, Type1World, type Step, type World } from "./helpers";

const P = 4096n;

/** A scenario: a name and how to build its world on a core. */
export interface Scenario {
  name: string;
  build(core: WasmCore): World;
}

function type1World(w: Type1World, steps: Step[]): World {
  return { core: w.core, sys: w.sys, steps, snapshot: () => w.snapshot() };
}

/** DMA writes by a device behind the container's first (hardware) domain. */
function deviceWrites(w: Type1World, pages: number[]): Step {
  return {
    name: `device writes ${pages.join(",")}`,
    run: () => {
      const vd = w.iommu.domainList[0];
      if (!vd || !(vd.domain instanceof HwIommuDomain)) return 0;
      const dev = new DmaDevice();
      dev.attach(vd.domain.hw);
      for (const p of pages) dev.write(p * 4096, 8);
      return 0;
    },
  };
}

/** map, START, GET (plain and shifted), map while tracking, unmap with bitmap, STOP, unmap all. */
function type1Basic(name: string, platform: () => Platform, opts: Partial<Type1Options> = {}): Scenario {
  return {
    name,
    build(core) {
      const w = new Type1World(core, platform(), opts);
      const b = w.bitmaps;
      return type1World(w, [
        { name: "GROUP_SET_CONTAINER", run: () => w.setContainer(0) },
        { name: "SET_IOMMU", run: () => w.setIommu() },
        { name: "MAP_DMA A (16 pages)", run: () => w.map(0n, 0n, 16n * P) },
        { name: "MAP_DMA B (8 pages at page 16)", run: () => w.map(16n * P, 16n * P, 8n * P) },
        { name: "DIRTY_PAGES START", run: () => w.dirty(1) },
        deviceWrites(w, [1, 5, 17, 23]),
        { name: "GET_BITMAP A+B", run: () => w.get(0n, 24n * P, b) },
        { name: "MAP_DMA C while tracking", run: () => w.map(64n * P, 32n * P, 4n * P) },
        deviceWrites(w, [2, 18, 65]),
        { name: "GET_BITMAP B+C from page 8 (shifted)", run: () => w.get(8n * P, 60n * P, b + 0x1000n) },
        deviceWrites(w, [20]),
        { name: "UNMAP_DMA B with bitmap", run: () => w.unmap(16n * P, 8n * P, b + 0x2000n) },
        { name: "DIRTY_PAGES STOP", run: () => w.dirty(2) },
        { name: "UNMAP_DMA all", run: () => w.unmap(0n, 1n << 40n) },
      ]);
    },
  };
}

/** START with only an emulated group, dma_rw, then the IOMMU group joins (F8's path). */
function type1EmulatedThenIommu(format: PtFormat): Scenario {
  return {
    name: `type1 on ${format} dirty hardware: emulated group, START, IOMMU group attached`,
    build(core) {
      const platform = withHardwareDirty(vtdPlatform(), format);
      platform.groups.push({ id: 7, devices: [{ name: "mdev0", resv: [] }], emulated: true });
      const w = new Type1World(core, platform);
      const b = w.bitmaps;
      return type1World(w, [
        { name: "GROUP_SET_CONTAINER emulated", run: () => w.setContainer(7) },
        { name: "SET_IOMMU", run: () => w.setIommu() },
        { name: "MAP_DMA A (16 pages)", run: () => w.map(0n, 0n, 16n * P) },
        { name: "DIRTY_PAGES START", run: () => w.dirty(1) },
        { name: "dma_rw write page 4", run: () => w.sys.kernel(() => w.iommu.dmaRw(null, 4n * P, new Uint8Array(16).fill(7), true)) },
        { name: "GROUP_SET_CONTAINER IOMMU group", run: () => w.setContainer(0) },
        deviceWrites(w, [3, 9]),
        { name: "GET_BITMAP", run: () => w.get(0n, 16n * P, b) },
        { name: "UNMAP_DMA A with bitmap", run: () => w.unmap(0n, 16n * P, b + 0x1000n) },
      ]);
    },
  };
}

/** iommufd: IOAS, mock device, map, dirty HWPT, tracking, harvests (clear and NO_CLEAR), map, unmap, destroy. */
function iommufdBasic(): Scenario {
  return {
    name: "iommufd",
    build(core) {
      const w = new IommufdWorld(core);
      // Harvests go into pages that exist: Linux 6.12 drops a record whose bitmap page it
      // cannot pin and clears the D bit anyway (test/oracle/iommufd-bitmap-pin.out), so a
      // failed page allocation there loses bits in Linux too.
      w.proc.fill(w.bitmaps, 0x40000, 0xff);
      w.proc.fill(w.bitmaps, 0x40000, 0);
      const S = U.MOCK_APERTURE_START;
      const ids = { ioas: 1, idev: 0, hwpt: 0 };
      const dirtyBits = (pages: number[]): bigint => {
        const at = w.bitmaps + 0x30000n;
        const bits = new Uint8Array(128);
        for (const p of pages) bits[p >> 3] |= 1 << (p & 7);
        w.proc.write(at, bits);
        return at;
      };
      const steps: Step[] = [
        { name: "IOAS_ALLOC", run: () => (ids.ioas = w.ioasAlloc()) },
        { name: "MOCK_DOMAIN on the IOAS", run: () => (ids.idev = w.mockDomain(ids.ioas)) },
        { name: "IOAS_MAP 2 MiB", run: () => w.map(ids.ioas, 0n, 2n << 20n, S) },
        { name: "HWPT_ALLOC DIRTY_TRACKING", run: () => (ids.hwpt = w.hwptAlloc(ids.idev, ids.ioas)) },
        { name: "SET_DIRTY_TRACKING on", run: () => w.track(ids.hwpt, true) },
        { name: "TEST_OP_DIRTY", run: () => w.setDirty(ids.hwpt, S, 512n * P, P, dirtyBits([0, 1, 77, 300, 511])) },
        { name: "GET_DIRTY_BITMAP", run: () => w.get(ids.hwpt, S, 2n << 20n, P, w.bitmaps), dropsErrors: true },
        { name: "TEST_OP_DIRTY again", run: () => w.setDirty(ids.hwpt, S, 512n * P, P, dirtyBits([5, 400])) },
        { name: "GET_DIRTY_BITMAP NO_CLEAR (unaligned bitmap)", run: () => w.get(ids.hwpt, S, 2n << 20n, P, w.bitmaps + 0x1ff1n, U.IOMMU_HWPT_GET_DIRTY_BITMAP_NO_CLEAR), dropsErrors: true },
        { name: "GET_DIRTY_BITMAP 2 KiB pages", run: () => w.get(ids.hwpt, S, 2n << 20n, 2048n, w.bitmaps + 0x3000n), dropsErrors: true },
        { name: "IOAS_MAP 1 MiB more", run: () => w.map(ids.ioas, 2n << 20n, 1n << 20n, S + (4n << 20n)) },
        { name: "IOAS_UNMAP the first area", run: () => w.unmap(ids.ioas, S, 2n << 20n) },
        { name: "DESTROY the HWPT", run: () => w.destroy(ids.hwpt) },
      ];
      return { core, sys: w.sys, steps, snapshot: () => w.snapshot() };
    },
  };
}

/** vhost-vdpa IOTLB updates and invalidations written through the device file. */
function vhostBasic(): Scenario {
  return {
    name: "vhost-vdpa",
    build(core) {
      const w = new IommufdWorld(core); // only for its process and guard
      const dev = new VhostVdpa();
      dev.open();
      dev.ioctl(w.proc, VHOST_SET_OWNER, 0n);
      const msgs = w.bitmaps + 0x20000n;
      w.proc.fill(msgs, 0x1000, 0xee);
      const api = new VhostIotlbApi(fileWriter(dev, w.proc, msgs), dev);
      const r = (x: { ok: boolean; errno?: number }): number => (x.ok ? 0 : -(x.errno ?? 1));
      const steps: Step[] = [
        { name: "UPDATE", run: () => w.sys.kernel(() => r(api.update({ iova: 0n, size: 0x10000n, uaddr: w.guest, perm: VhostAccess.RW }))) },
        { name: "UPDATE RO", run: () => w.sys.kernel(() => r(api.update({ iova: 0x10000n, size: 0x1000n, uaddr: w.guest + 0x10000n, perm: VhostAccess.RO }))) },
        { name: "INVALIDATE", run: () => w.sys.kernel(() => r(api.invalidate({ iova: 0n, size: 0x10000n }))) },
      ];
      const snapshot = (): unknown => ({ maps: dev.setMapCalls.length, lookup: String(api.lookup(0x10000n)?.addr), kernelBlocks: w.sys.kernelBlocks() });
      return { core, sys: w.sys, steps, snapshot };
    },
  };
}

/** Every scenario of the sweep. */
export const SCENARIOS: Scenario[] = [
  type1Basic("type1 (VT-d, range domain)", vtdPlatform),
  type1Basic("type1 byte copy (staged path)", vtdPlatform, { bitmapCopy: "byte" }),
  type1Basic("type1 with Linux <= 4.10's workqueue lock accounting", vtdPlatform, { lockAccounting: "workqueue" }),
  type1Basic("type1 on intel-ss dirty hardware", () => withHardwareDirty(vtdPlatform(), "intel-ss")),
  type1Basic("type1 on arm-lpae-s1 dirty hardware", () => withHardwareDirty(vtdPlatform(), "arm-lpae-s1")),
  type1EmulatedThenIommu("amd-v1"),
  iommufdBasic(),
  vhostBasic(),
];
