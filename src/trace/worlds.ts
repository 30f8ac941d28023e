/**
 * The machines behind the iommufd worlds of a trace: `mock` is the 6.12 test kernel booted
 * without VT-d (the IOMMUFD_TEST mock device works), `edu` the same kernel with QEMU's
 * emulated VT-d and the edu device bound to vfio-pci, its cdev at /dev/vfio/devices/vfio0.
 */
import type { Process } from "../process/process";
import { installIommufd } from "../iommufd";
import { installVfioDeviceCdev } from "../iommufd/cdev";
import type { DeviceIommu } from "../iommufd/ioas";
import { EDU_CDEV_PATH, IommufdWorld, IommufdWorldName } from "./iommufd";
import { MttyWorld } from "./mtty";

/** struct iommu_hw_info_vtd of QEMU's intel-iommu as the 6.12 test kernel reports it (type 1). */
function vtdHwInfo(): { type: number; data: Uint8Array } {
  const d = new DataView(new ArrayBuffer(24));
  d.setUint32(0, 1, true); // IOMMU_HW_INFO_VTD_ERRATA_772415_SPR17
  d.setBigUint64(8, 0xd2008c22260206n, true); // cap_reg
  d.setBigUint64(16, 0xf00f4an, true); // ecap_reg
  return { type: 1, data: new Uint8Array(d.buffer) };
}

/** The edu device's IOMMU: VT-d second-stage tables, 39-bit, MSI window reserved, no dirty tracking (no SSADS). */
export function eduVtdIommu(): DeviceIommu {
  return {
    format: "intel-ss",
    pgsizeBitmap: 0x40201000,
    apertureStart: 0n,
    apertureLast: (1n << 39n) - 1n,
    dirtyTracking: false,
    reserved: [{ start: 0xfee00000n, last: 0xfeefffffn }],
    hwInfo: vtdHwInfo(),
  };
}

/** Installs /dev/iommu (and, in the edu world, the edu device's cdev; in the mtty world, the mdev's) in `proc`. */
export function installIommufdWorld(proc: Process, world: IommufdWorldName, arenaBase: bigint): IommufdWorld {
  installIommufd(proc);
  if (world === "mtty") return new MttyWorld(proc, arenaBase);
  if (world === "edu") installVfioDeviceCdev(proc, EDU_CDEV_PATH, eduVtdIommu(), { flags: 0x2, numRegions: 9, numIrqs: 5 });
  return new IommufdWorld(proc, world, arenaBase);
}
