/**
 * Issue 11, F16 / deliverable 4: programmer errors in the JS API (NaN, wrong types,
 * negative limits) throw a TypeError or RangeError that names the argument; kernel errors
 * stay values.
 */
import { Process } from "../../src/process/process";
import { replayTrace, parseTrace } from "../../src/trace";
import { Type1Handle, createVfioProcess } from "../../src/type1";
import { VhostVdpa, VhostIotlbApi, fileWriter, VHOST_SET_OWNER, installIommufd } from "../../src";
import { Errno } from "../../src/uapi/errno";
import { VFIO_GET_API_VERSION } from "../../src/uapi/vfio";

/** Calls `fn` and returns what it threw: its class and message. */
function thrown(fn: () => unknown): { type: string; message: string } | null {
  try {
    fn();
    return null;
  } catch (e) {
    return { type: (e as Error).constructor.name, message: (e as Error).message };
  }
}

const as = <T>(v: unknown): T => v as T;

describe("the simulated process", () => {
  const proc = new Process();
  installIommufd(proc);
  const fd = proc.open("/dev/iommu").ret;

  test("ioctl with NaN, a fraction or a string names the argument", () => {
    expect(thrown(() => proc.ioctl(fd, VFIO_GET_API_VERSION, NaN))).toEqual({ type: "TypeError", message: expect.stringMatching(/^arg must be an integer/) });
    expect(thrown(() => proc.ioctl(fd, 1.5, 0n))).toEqual({ type: "TypeError", message: expect.stringMatching(/^cmd must be an integer/) });
    expect(thrown(() => proc.ioctl(as<number>("3"), 0, 0n))).toEqual({ type: "TypeError", message: expect.stringMatching(/^fd must be an integer/) });
    expect(thrown(() => proc.ioctl(fd, 0, 1n << 64n))).toEqual({ type: "RangeError", message: expect.stringMatching(/^arg must be in/) });
  });

  test("kernel errors of ioctl stay values", () => {
    expect(proc.ioctl(999, 0, 0n)).toEqual({ ret: -1, errno: Errno.EBADF });
    expect(proc.ioctl(fd, 0x1234, -1)).toEqual({ ret: -1, errno: Errno.ENOTTY }); // -1 is ~0UL, as in C
  });

  test("setrlimitMemlock refuses negative and non-integer limits", () => {
    expect(thrown(() => proc.setrlimitMemlock(-1n, -1n))).toEqual({ type: "RangeError", message: expect.stringMatching(/^soft must be in 0 \.\. 2\^64-1/) });
    expect(thrown(() => proc.setrlimitMemlock(1n, -1n))).toEqual({ type: "RangeError", message: expect.stringMatching(/^hard /) });
    expect(thrown(() => proc.setrlimitMemlock(as<bigint>(0.5)))).toEqual({ type: "TypeError", message: expect.stringMatching(/^soft /) });
    expect(proc.getrlimitMemlock().soft).toBeGreaterThanOrEqual(0n);
    expect(proc.setrlimitMemlock(2n, 1n)).toEqual({ ret: -1, errno: Errno.EINVAL }); // setrlimit's own answer
  });

  test("memory syscalls name a NaN address or length", () => {
    expect(thrown(() => proc.mmap(NaN, 4096))).toEqual({ type: "TypeError", message: expect.stringMatching(/^addr /) });
    expect(thrown(() => proc.fill(0x1000, NaN, 0))).toEqual({ type: "TypeError", message: expect.stringMatching(/^len /) });
    expect(thrown(() => proc.write(0x1000, as<Uint8Array>([1, 2])))).toEqual({ type: "TypeError", message: expect.stringMatching(/^data must be a Uint8Array/) });
    expect(proc.munmap(3, 4096)).toEqual({ ret: -1, errno: Errno.EINVAL }); // unaligned: the kernel's EINVAL
  });
});

describe("trace replay", () => {
  test("replayTrace(null) and parseTrace(42) name the text", () => {
    expect(thrown(() => replayTrace(as<string>(null)))).toEqual({ type: "TypeError", message: "text must be a string, got null" });
    expect(thrown(() => parseTrace(as<string>(42)))).toEqual({ type: "TypeError", message: "text must be a string, got 42" });
    expect(thrown(() => replayTrace("case x\n", as<object>(null)))).toEqual({ type: "TypeError", message: "opts must be an object, got null" });
  });
});

describe("the typed type1 API", () => {
  const proc = createVfioProcess();
  const h = Type1Handle.open(proc);
  if (!h.ok) throw new Error(h.errnoName);
  const vfio = h.value;

  test("a NaN or string field names the field", () => {
    expect(thrown(() => vfio.mapDma({ iova: as<bigint>(NaN), vaddr: 0n, size: 4096n }))).toEqual({ type: "TypeError", message: expect.stringMatching(/^req\.iova must be an integer/) });
    expect(thrown(() => vfio.mapDma({ iova: 0n, vaddr: 0n, size: 4096n, write: as<boolean>("yes") }))).toEqual({ type: "TypeError", message: expect.stringMatching(/^req\.write must be a boolean/) });
    expect(thrown(() => vfio.getDirtyBitmap({ iova: 0n, size: 4096n }, { pgsize: 4096n, size: 8n, data: as<bigint>(undefined) }))).toEqual({ type: "TypeError", message: expect.stringMatching(/^bitmap\.data /) });
    expect(thrown(() => vfio.unmapDma(as<{ iova: bigint; size: bigint }>(null)))).toEqual({ type: "TypeError", message: "req must be an object, got null" });
    expect(thrown(() => Type1Handle.open(proc, { version: as<1>(3) }))).toEqual({ type: "RangeError", message: expect.stringMatching(/^opts\.version must be 1 or 2/) });
  });

  test("kernel errors stay values", () => {
    expect(vfio.mapDma({ iova: 0x1001n, vaddr: 0n, size: 4096n })).toEqual({ ok: false, errno: Errno.EINVAL, errnoName: "EINVAL" });
    expect(vfio.getDirtyBitmap({ iova: 0n, size: 4096n }, { pgsize: 4096n, size: 8n, data: 0n })).toEqual({ ok: false, errno: Errno.EINVAL, errnoName: "EINVAL" });
  });
});

describe("the vhost IOTLB API", () => {
  test("a NaN iova or a fractional perm names the field; kernel errors stay values", () => {
    const proc = new Process();
    const scratch = BigInt(proc.mmap(undefined, 4096).ret);
    const dev = new VhostVdpa();
    dev.open();
    dev.ioctl(proc, VHOST_SET_OWNER, 0n);
    const api = new VhostIotlbApi(fileWriter(dev, proc, scratch), dev);
    expect(thrown(() => api.update({ iova: as<bigint>(NaN), size: 4096n, uaddr: 0x10000n, perm: 3 }))).toEqual({ type: "TypeError", message: expect.stringMatching(/^a\.iova /) });
    expect(thrown(() => api.update({ iova: 0n, size: 4096n, uaddr: 0x10000n, perm: 1.5 }))).toEqual({ type: "TypeError", message: expect.stringMatching(/^a\.perm /) });
    expect(thrown(() => api.invalidate({ iova: 0n, size: -1n }))).toEqual({ type: "RangeError", message: expect.stringMatching(/^a\.size /) });
    expect(api.update({ iova: 0n, size: 0n, uaddr: 0x10000n, perm: 3 })).toEqual({ ok: false, errno: Errno.EINVAL, errnoName: "EINVAL" });
  });
});
