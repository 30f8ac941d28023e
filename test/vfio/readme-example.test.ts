/** The README's device-fd example, verbatim (plus expectations), so it cannot rot. */
import { Process, MttyDevice, VfioCoreDevice, VfioDevice, installVfioDevice } from "../../src";

test("README: an mtty device fd, STOP_COPY's data fd, DMA logging", () => {
  const proc = new Process();
  const mtty = new MttyDevice();
  installVfioDevice(proc, "/dev/vfio/devices/vfio0", new VfioCoreDevice(mtty));
  const dev = VfioDevice.open(proc, "/dev/vfio/devices/vfio0");
  expect(dev.ok).toBe(true);
  if (dev.ok) {
    dev.value.setState("STOP");
    const s = dev.value.setState("STOP_COPY"); // { ok: true, value: { dataFd: 4 } }
    expect(s).toEqual({ ok: true, value: { dataFd: 4 } });
    if (s.ok && s.value.dataFd !== null) {
      const stream = dev.value.readAllData(s.value.dataFd); // 96 bytes
      expect(stream.ok && stream.value.length).toBe(96);
    }
    expect(dev.value.startLogging([{ iova: 0n, length: 1n << 30n }], 4096n)).toEqual({ ok: true, value: { pageSize: 4096n } });
    const bits = dev.value.report(0n, 1n << 30n, 4096n); // bitmap bytes (mtty: all zero)
    expect(bits.ok && bits.value.length === 32768 && bits.value.every((b) => b === 0)).toBe(true);
  }
});
