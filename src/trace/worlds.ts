/**
 * The machines behind the iommufd worlds of a trace: `mock` is the 6.12 test kernel booted
 * without VT-d (the IOMMUFD_TEST mock device works), `edu` the same kernel with the
 * emulated VT-d and QEMU's edu device bound to vfio-pci (its cdev at
 * /dev/vfio/devices/vfio0).
 */
import type { Process } from "../process/process";
import { installIommufd } from "../iommufd";
import { IommufdWorld, IommufdWorldName } from "./iommufd";

/** Installs /dev/iommu (and, in the edu world, the edu device's cdev) in `proc`. */
export function installIommufdWorld(proc: Process, world: IommufdWorldName, arenaBase: bigint): IommufdWorld {
  installIommufd(proc);
  return new IommufdWorld(proc, world, arenaBase);
}
