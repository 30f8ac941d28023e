/**
 * The mtty-like device through the typed API: the device fd, its features, a full
 * save -> resume of the device state through real data fds, PRE_COPY's stream, reset, the
 * sample's log ops, and the 6.1 core's missing PRE_COPY / MIG_DATA_SIZE.
 */
import { Process, fileCount } from "../../src/process";
import { Errno } from "../../src/uapi/errno";
import { VFIO_DEVICE_FLAGS_PCI, VFIO_MIGRATION_P2P, VFIO_MIGRATION_PRE_COPY, VFIO_MIGRATION_STOP_COPY } from "../../src/uapi/vfio";
import { MttyDevice, MTTY_MAGIC, VfioCoreDevice, VfioDevice, installVfioDevice, VFIO_CORE_LINUX_6_1 } from "../../src/vfio";

const PATH = "/dev/vfio/devices/vfio0";

function world(opts: ConstructorParameters<typeof MttyDevice>[0] = {}) {
  const proc = new Process();
  const mtty = new MttyDevice(opts);
  const core = new VfioCoreDevice(mtty, mtty.profile);
  installVfioDevice(proc, PATH, core);
  const dev = VfioDevice.open(proc, PATH);
  if (!dev.ok) throw new Error("open");
  return { proc, mtty, core, dev: dev.value };
}

const ok = <T>(r: { ok: true; value: T } | { ok: false; errno: number }): T => {
  if (!r.ok) throw new Error(`errno ${r.errno}`);
  return r.value;
};

test("GET_INFO, MIGRATION flags and MIG_DATA_SIZE are mtty's", () => {
  const { dev } = world();
  expect(ok(dev.getInfo())).toEqual({ argsz: 24, flags: VFIO_DEVICE_FLAGS_PCI, numRegions: 9, numIrqs: 5, capOffset: 0 });
  expect(ok(dev.migrationFlags())).toBe(VFIO_MIGRATION_STOP_COPY | VFIO_MIGRATION_P2P | VFIO_MIGRATION_PRE_COPY);
  expect(ok(dev.dataSize())).toBe(96n);
  expect(ok(dev.getStateName())).toBe("RUNNING");
});

test("STOP_COPY's stream resumes into another device, which then holds the same ports", () => {
  const a = world();
  const b = world();
  a.mtty.ports[0] = 0x41; // a register value that must travel
  expect(ok(a.dev.setState("STOP"))).toEqual({ dataFd: null });
  const { dataFd } = ok(a.dev.setState("STOP_COPY"));
  expect(dataFd).not.toBeNull();
  const stream = ok(a.dev.readAllData(dataFd!, 40));
  expect(stream.length).toBe(96);
  expect(new DataView(stream.buffer).getBigUint64(0, true)).toBe(MTTY_MAGIC);
  expect(ok(a.dev.setState("STOP"))).toEqual({ dataFd: null });
  // The driver dropped its stream: the fd still open reads ENODEV.
  expect(a.dev.readData(dataFd!, 8)).toMatchObject({ ok: false, errno: Errno.ENODEV });

  const r = ok(b.dev.setState("RESUMING"));
  expect(ok(b.dev.writeData(r.dataFd!, stream))).toBe(96);
  expect(ok(b.dev.setState("RUNNING"))).toEqual({ dataFd: null });
  expect(b.mtty.ports[0]).toBe(0x41);
  expect(b.proc.close(r.dataFd!).ret).toBe(0);
});

test("PRE_COPY: header first, PRECOPY_INFO counts it, STOP_COPY appends to the same fd", () => {
  const { dev, proc } = world();
  const { dataFd } = ok(dev.setState("PRE_COPY"));
  expect(ok(dev.precopyInfo(dataFd!))).toEqual({ initialBytes: 24n, dirtyBytes: 0n });
  expect(ok(dev.readAllData(dataFd!)).length).toBe(24);
  expect(ok(dev.precopyInfo(dataFd!))).toEqual({ initialBytes: 0n, dirtyBytes: 0n });
  expect(ok(dev.readData(dataFd!, 100)).length).toBe(0); // mtty's end of data is 0, not ENOMSG
  // PRE_COPY -> STOP_COPY goes through PRE_COPY_P2P; the ports land in the same file.
  expect(ok(dev.setState("STOP_COPY"))).toEqual({ dataFd: null });
  expect(dev.precopyInfo(dataFd!)).toMatchObject({ ok: false, errno: Errno.EINVAL });
  expect(ok(dev.readAllData(dataFd!)).length).toBe(72);
  expect(proc.close(dataFd!).ret).toBe(0);
});

test("a short stream fails RESUMING -> STOP and the device stays RESUMING", () => {
  const { dev } = world();
  const { dataFd } = ok(dev.setState("RESUMING"));
  const hdr = new Uint8Array(24);
  new DataView(hdr.buffer).setBigUint64(0, MTTY_MAGIC, true);
  new DataView(hdr.buffer).setUint32(8, 1, true);
  new DataView(hdr.buffer).setUint32(16, 2, true);
  expect(ok(dev.writeData(dataFd!, hdr))).toBe(24);
  expect(dev.setState("RUNNING")).toMatchObject({ ok: false, errno: Errno.EINVAL });
  expect(ok(dev.getStateName())).toBe("RESUMING");
  expect(ok(dev.reset())).toBeUndefined();
  expect(ok(dev.getStateName())).toBe("RUNNING");
  expect(dev.writeData(dataFd!, new Uint8Array(8))).toMatchObject({ ok: false, errno: Errno.ENODEV });
});

test("data files are released when both the driver and the process let go", () => {
  const { dev, proc, mtty } = world();
  ok(dev.setState("STOP"));
  const { dataFd } = ok(dev.setState("STOP_COPY"));
  const f = proc.fdget(dataFd!)!;
  expect(fileCount(f)).toBe(2); // the driver's saving_migf and the fd
  ok(dev.setState("STOP"));
  expect(fileCount(f)).toBe(1);
  proc.close(dataFd!);
  expect(fileCount(f)).toBe(0);
  expect(mtty.state).toBe(1);
});

test("the sample's DMA logging: any START is taken, REPORT sets nothing, STOP", () => {
  const { dev } = world();
  expect(ok(dev.startLogging([{ iova: 0x10000n, length: 0x10000n }], 4096n))).toEqual({ pageSize: 4096n });
  expect(Array.from(ok(dev.report(0x10000n, 0x10000n, 4096n)))).toEqual(new Array(8).fill(0));
  expect(ok(dev.stopLogging())).toBeUndefined();
});

test("Linux 6.1's core: no PRE_COPY states, MIG_DATA_SIZE is an unknown feature (EINVAL)", () => {
  const { dev } = world({ profile: VFIO_CORE_LINUX_6_1 });
  expect(ok(dev.migrationFlags())).toBe(VFIO_MIGRATION_STOP_COPY | VFIO_MIGRATION_P2P);
  expect(dev.setState("PRE_COPY")).toMatchObject({ ok: false, errno: Errno.EINVAL });
  expect(dev.dataSize()).toMatchObject({ ok: false, errno: Errno.EINVAL });
  expect(ok(dev.setState("STOP"))).toEqual({ dataFd: null });
});
