import { Errno } from "../../src/uapi/errno";
import { VHOST_MSG_SIZE, VhostAccess, VhostIotlbType as T, decodeIotlbMsg } from "../../src/uapi/vhost";
import { VhostIotlbApi, fileWriter } from "../../src/vhost/api";
import { FakeMm } from "./fake-mm";
import { GUEST, SCRATCH, rig } from "./helpers";

describe("typed API", () => {
  test("builds the exact vhost_msg_v2 bytes", () => {
    const seen: Uint8Array[] = [];
    const api = new VhostIotlbApi((m) => (seen.push(m), VHOST_MSG_SIZE));
    api.update({ iova: 0x1000n, size: 0x2000n, uaddr: 0xabcd000n, perm: VhostAccess.WO, asid: 3 });
    expect(seen[0].length).toBe(72);
    const dv = new DataView(seen[0].buffer);
    expect([dv.getUint32(0, true), dv.getUint32(4, true)]).toEqual([2, 3]);
    expect(decodeIotlbMsg(seen[0].subarray(8, 40))).toEqual({
      iova: 0x1000n,
      size: 0x2000n,
      uaddr: 0xabcd000n,
      perm: VhostAccess.WO,
      type: T.UPDATE,
    });
    expect(Array.from(seen[0].subarray(40))).toEqual(new Array(32).fill(0));
  });

  test("kernel errors come back as values with the errno name; lookup reads the model", () => {
    const r = rig();
    const api = new VhostIotlbApi(fileWriter(r.dev, r.mm, SCRATCH), r.dev);
    expect(api.update({ iova: 0n, size: 0x1000n, uaddr: GUEST, perm: VhostAccess.RW })).toEqual({ ok: true });
    expect(api.update({ iova: 0n, size: 0x1000n, uaddr: GUEST, perm: VhostAccess.RW })).toEqual({
      ok: false,
      errno: Errno.EFAULT,
      errnoName: "EFAULT",
    });
    expect(api.update({ iova: 0x1000n, size: 0n, uaddr: GUEST, perm: VhostAccess.RW })).toEqual({
      ok: false,
      errno: Errno.EINVAL,
      errnoName: "EINVAL",
    });
    expect(api.lookup(0xfffn)!.addr).toBe(GUEST);
    expect(api.lookup(0x1000n)).toBeNull();
    expect(api.invalidate({ iova: 0n, size: 0x1000n })).toEqual({ ok: true });
    expect(api.lookup(0n)).toBeNull();
    expect(new VhostIotlbApi(() => VHOST_MSG_SIZE).lookup(0n)).toBeNull();
  });

  test("batch ends the batch even when the callback throws; a failed BATCH_BEGIN skips the callback", () => {
    const r = rig();
    const api = new VhostIotlbApi(fileWriter(r.dev, r.mm, SCRATCH), r.dev);
    expect(() =>
      api.batch(() => {
        api.update({ iova: 0n, size: 0x1000n, uaddr: GUEST, perm: VhostAccess.RW });
        throw new Error("user bug");
      }),
    ).toThrow("user bug");
    expect(r.dev.batching).toBe(false);
    expect(r.dev.setMapCalls.length).toBe(1);

    const other = new FakeMm();
    other.mmap(SCRATCH, 4096);
    const stranger = new VhostIotlbApi(fileWriter(r.dev, other, SCRATCH), r.dev);
    let ran = false;
    expect(stranger.batch(() => void (ran = true))).toEqual({ ok: false, errno: Errno.EFAULT, errnoName: "EFAULT" });
    expect(ran).toBe(false);
  });

  test("an unwritable staging buffer is EFAULT, not an exception", () => {
    const r = rig();
    const api = new VhostIotlbApi(fileWriter(r.dev, r.mm, 0xdead_0000n), r.dev);
    expect(api.update({ iova: 0n, size: 0x1000n, uaddr: GUEST, perm: 3 })).toEqual({ ok: false, errno: Errno.EFAULT, errnoName: "EFAULT" });
    expect(r.dev.iotlb(0)).toBeNull();
  });
});
