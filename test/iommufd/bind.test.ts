/**
 * Devices bound with their own IOMMU (iommufd_device_bind / iommufd_device_attach, the
 * entry the migrate backend's VMM uses): the HWPT gets the device's geometry, the aperture
 * is enforced (an area outside it makes the aperture reservation EADDRINUSE, as on 6.12),
 * and failed attaches leave the object table as it was.
 */
import { Process, PAGE_SIZE } from "../../src/process";
import { IommufdCtx, installIommufd, type DeviceIommu } from "../../src/iommufd";
import * as U from "../../src/iommufd/uapi";
import { Errno } from "../../src/uapi/errno";

const VTD: DeviceIommu = { format: "intel-ss", pgsizeBitmap: 4096 + 2 ** 21, apertureStart: 0n, apertureLast: (1n << 48n) - 1n, dirtyTracking: true };

function setup(): { proc: Process; fd: number; ctx: IommufdCtx; arg: bigint } {
  const proc = new Process();
  installIommufd(proc);
  const fd = proc.open("/dev/iommu").ret;
  const ctx = proc.fdget(fd) as IommufdCtx;
  return { proc, fd, ctx, arg: BigInt(proc.mmap(undefined, PAGE_SIZE).ret) };
}

function call(t: ReturnType<typeof setup>, cmd: number, size: number, fill: (dv: DataView) => void): { errno: number; out: DataView } {
  const b = new Uint8Array(size);
  const dv = new DataView(b.buffer);
  dv.setUint32(0, size, true);
  fill(dv);
  t.proc.write(t.arg, b);
  const r = t.proc.ioctl(t.fd, cmd, t.arg);
  const back = t.proc.read(t.arg, size)!;
  return { errno: r.errno, out: new DataView(back.buffer, back.byteOffset, size) };
}

const ioas = (t: ReturnType<typeof setup>) => call(t, U.IOMMU_IOAS_ALLOC, 12, () => undefined).out.getUint32(8, true);
const map = (t: ReturnType<typeof setup>, id: number, uaddr: bigint, len: bigint, iova: bigint) =>
  call(t, U.IOMMU_IOAS_MAP, 40, (dv) => {
    dv.setUint32(4, 7, true);
    dv.setUint32(8, id, true);
    dv.setBigUint64(16, uaddr, true);
    dv.setBigUint64(24, len, true);
    dv.setBigUint64(32, iova, true);
  }).errno;
const hwpt = (t: ReturnType<typeof setup>, dev: number, pt: number, flags: number) =>
  call(t, U.IOMMU_HWPT_ALLOC, 48, (dv) => {
    dv.setUint32(4, flags, true);
    dv.setUint32(8, dev, true);
    dv.setUint32(12, pt, true);
  });

describe("iommufd: devices bound with their IOMMU", () => {
  test("HWPT_ALLOC builds the device's format; IOVAs outside the mock aperture map", () => {
    const t = setup();
    const io = ioas(t);
    const guest = BigInt(t.proc.mmap(undefined, 4 << 20).ret);
    expect(map(t, io, guest, 4n << 20n, 0n)).toBe(0); // IOVA 0: outside the mock's aperture
    const dev = t.ctx.bindDevice(VTD);
    const h = hwpt(t, dev, io, U.IOMMU_HWPT_ALLOC_DIRTY_TRACKING);
    expect(h.errno).toBe(0);
    const obj = t.ctx.get(h.out.getUint32(16, true), "hwpt")!;
    expect(obj.domain.format).toBe("intel-ss");
    expect(obj.domain.dirtyOps).toBe(true);
    expect(t.ctx.attachDevice(dev, obj.id)).toBe(obj.id);
    expect(t.ctx.attachDevice(dev, obj.id)).toBe(-Errno.EBUSY);
    expect(t.ctx.unbindDevice(dev)).toBe(0);
    expect(obj.devices.size).toBe(0);
    expect(t.ctx.get(dev, "device")).toBeNull();
    t.proc.exit();
  });

  test("an area outside the device's aperture fails HWPT_ALLOC and the attach, leaving nothing behind", () => {
    const t = setup();
    const io = ioas(t);
    const guest = BigInt(t.proc.mmap(undefined, 1 << 20).ret);
    expect(map(t, io, guest, 1n << 20n, 1n << 40n)).toBe(0);
    const dev = t.ctx.bindDevice({ ...VTD, apertureLast: (1n << 39n) - 1n });
    const before = [...t.ctx.objects.keys()];
    expect(hwpt(t, dev, io, 0).errno).toBe(Errno.EADDRINUSE);
    expect(t.ctx.attachDevice(dev, io)).toBe(-Errno.EADDRINUSE);
    expect([...t.ctx.objects.keys()]).toEqual(before);
    expect(t.ctx.attachDevice(dev, 999)).toBe(-Errno.ENOENT);
    expect(t.ctx.attachDevice(999, io)).toBe(-Errno.ENOENT);
    t.proc.exit();
  });

  test("a device without dirty tracking gets EOPNOTSUPP for a dirty HWPT and cannot join one", () => {
    const t = setup();
    const io = ioas(t);
    const good = t.ctx.bindDevice(VTD);
    const plain = t.ctx.bindDevice({ ...VTD, dirtyTracking: false });
    expect(hwpt(t, plain, io, U.IOMMU_HWPT_ALLOC_DIRTY_TRACKING).errno).toBe(Errno.EOPNOTSUPP);
    const h = hwpt(t, good, io, U.IOMMU_HWPT_ALLOC_DIRTY_TRACKING).out.getUint32(16, true);
    expect(t.ctx.attachDevice(plain, h)).toBe(-Errno.EINVAL);
    expect(t.ctx.get(plain, "device")!.hwpt).toBeNull();
    t.proc.exit();
  });
});
