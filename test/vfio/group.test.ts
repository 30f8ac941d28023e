/**
 * VFIO_GROUP_GET_DEVICE_FD: the legacy way to a device fd. An mtty-like mdev sits alone in
 * an emulated IOMMU group; the fd comes back as the ioctl's return value once the group is
 * in a container with an IOMMU set, and is a full device fd (features, data fds).
 */
import { Process } from "../../src/process";
import { Errno } from "../../src/uapi/errno";
import { VFIO_GROUP_GET_DEVICE_FD, VFIO_GROUP_SET_CONTAINER, VFIO_SET_IOMMU, VFIO_TYPE1v2_IOMMU } from "../../src/uapi/vfio";
import { vtdPlatform } from "../../src/iommu/platform";
import { installVfio, registerGroupDevice } from "../../src/type1/container";
import { MttyDevice, VfioCoreDevice, VfioDevice } from "../../src/vfio";

const UUID = "83b8f4f2-509f-382f-3c1e-e6bfe0fa1001";

function world() {
  const platform = vtdPlatform();
  const group = { id: 7, devices: [{ name: UUID, resv: [] }], emulated: true };
  platform.groups.push(group);
  const proc = new Process();
  installVfio(proc, platform);
  const mtty = new MttyDevice();
  const core = new VfioCoreDevice(mtty);
  registerGroupDevice(group, UUID, core);
  const buf = BigInt(proc.mmap(undefined, 0x2000).ret);
  proc.write(buf, new TextEncoder().encode(UUID + "\0"));
  const c = proc.open("/dev/vfio/vfio").ret;
  const g = proc.open("/dev/vfio/7").ret;
  return { proc, mtty, core, buf, c, g };
}

test("before the group has a container: EINVAL; unknown name: ENODEV; then the fd", () => {
  const { proc, core, buf, c, g } = world();
  expect(proc.ioctl(g, VFIO_GROUP_GET_DEVICE_FD, buf)).toEqual({ ret: -1, errno: Errno.EINVAL });
  const fdb = new Uint8Array(4);
  new DataView(fdb.buffer).setInt32(0, c, true);
  proc.write(buf + 0x1000n, fdb);
  expect(proc.ioctl(g, VFIO_GROUP_SET_CONTAINER, buf + 0x1000n).ret).toBe(0);
  expect(proc.ioctl(c, VFIO_SET_IOMMU, VFIO_TYPE1v2_IOMMU).ret).toBe(0);
  proc.write(buf + 0x1800n, new TextEncoder().encode("no-such-device\0"));
  expect(proc.ioctl(g, VFIO_GROUP_GET_DEVICE_FD, buf + 0x1800n)).toEqual({ ret: -1, errno: Errno.ENODEV });
  expect(proc.ioctl(g, VFIO_GROUP_GET_DEVICE_FD, 0n)).toEqual({ ret: -1, errno: Errno.EFAULT });
  const r = proc.ioctl(g, VFIO_GROUP_GET_DEVICE_FD, buf);
  expect(r.ret).toBeGreaterThan(g);
  expect(core.opens).toBe(1);
  const dev = new VfioDevice(proc, r.ret);
  expect(dev.getInfo()).toMatchObject({ ok: true, value: { flags: 2, numRegions: 9, numIrqs: 5 } });
  expect(dev.setState("STOP")).toEqual({ ok: true, value: { dataFd: null } });
  const s = dev.setState("STOP_COPY");
  expect(s.ok && s.value.dataFd).toBeGreaterThan(r.ret);
  expect(dev.close().ok).toBe(true);
  expect(core.opens).toBe(0);
});

test("a name without a NUL in its first 4 KiB: EINVAL", () => {
  const { proc, buf, g } = world();
  proc.fill(buf, 0x2000, 0x41);
  expect(proc.ioctl(g, VFIO_GROUP_GET_DEVICE_FD, buf)).toEqual({ ret: -1, errno: Errno.EINVAL });
});
