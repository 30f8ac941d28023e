import { Errno } from "../../src/uapi/errno";
import { VHOST_MSG_SIZE, VhostIotlbType as T } from "../../src/uapi/vhost";
import { GUEST, rig } from "./helpers";

const OK = VHOST_MSG_SIZE;
const EFAULT = -Errno.EFAULT;
const PAGE = 0x1000n;
const NEW = 0x5555_0000_0000n;

/** A device with the REMAP option and two entries: A = [0, 0x3fff], B = [0x4000, 0x4fff]. */
function remapRig() {
  const r = rig({ remap: true });
  expect(r.send(T.UPDATE, 0n, 4n * PAGE, GUEST, 3)).toBe(OK);
  expect(r.send(T.UPDATE, 4n * PAGE, PAGE, GUEST + 4n * PAGE, 1)).toBe(OK);
  const handler = (iova: bigint, size: bigint, perm = 0, uaddr = NEW) =>
    r.dev.processIotlbMsg(r.mm, 0, { type: T.REMAP, iova, size, uaddr, perm });
  return { ...r, handler };
}

describe("VHOST_IOTLB_REMAP (RFC V1) rules", () => {
  test.each([
    ["perm != 0", 0n, 4n * PAGE, 3, -Errno.EINVAL],
    ["perm != 0 (RO)", 0n, 4n * PAGE, 1, -Errno.EINVAL],
    ["size 0", 0n, 0n, 0, -Errno.EINVAL],
    ["no mapping", 0x10000n, PAGE, 0, -Errno.ENOENT],
    ["wrong size (smaller)", 0n, 2n * PAGE, 0, -Errno.EINVAL],
    ["wrong size (larger, first overlap is A)", 0n, 5n * PAGE, 0, -Errno.EINVAL],
    ["iova inside a mapping", PAGE, 3n * PAGE, 0, -Errno.EINVAL],
    ["range covering B but starting in A", 3n * PAGE, 2n * PAGE, 0, -Errno.EINVAL],
  ] as const)("%s: write returns EFAULT, the handler says why, the tree is unchanged", (_n, iova, size, perm, want) => {
    const r = remapRig();
    const before = r.tree();
    const calls = r.dev.setMapCalls.length;
    expect(r.send(T.REMAP, iova, size, NEW, perm)).toBe(EFAULT);
    expect(r.handler(iova, size, perm)).toBe(want);
    expect(r.tree()).toEqual(before);
    expect(r.dev.setMapCalls.length).toBe(calls);
  });

  test("an exact match inside a batch changes addr only; set_map waits for BATCH_END", () => {
    const r = remapRig();
    const calls = r.dev.setMapCalls.length;
    expect(r.send(T.BATCH_BEGIN, 0n, 0n)).toBe(OK);
    expect(r.send(T.REMAP, 4n * PAGE, PAGE, NEW)).toBe(OK);
    expect(r.tree()[1]).toEqual({ start: 4n * PAGE, last: 5n * PAGE - 1n, addr: NEW, perm: 1 });
    expect(r.tree()[0].addr).toBe(GUEST);
    expect(r.dev.setMapCalls.length).toBe(calls);
    expect(r.dev.parentLookup(4n * PAGE)!.addr).toBe(GUEST + 4n * PAGE);
    expect(r.send(T.BATCH_END, 0n, 0n)).toBe(OK);
    expect(r.dev.setMapCalls.length).toBe(calls + 1);
    expect(r.dev.setMapCalls.at(-1)!.entries.map((e) => e.addr)).toEqual([GUEST, NEW]);
    expect(r.dev.parentLookup(4n * PAGE)!.addr).toBe(NEW);
  });

  test("outside a batch it succeeds, but set_map runs before addr changes: the parent keeps the OLD address", () => {
    const r = remapRig();
    const calls = r.dev.setMapCalls.length;
    expect(r.send(T.REMAP, 0n, 4n * PAGE, NEW)).toBe(OK);
    expect(r.tree()[0].addr).toBe(NEW);
    expect(r.dev.setMapCalls.length).toBe(calls + 1);
    expect(r.dev.setMapCalls.at(-1)!.entries[0].addr).toBe(GUEST);
    expect(r.dev.parentLookup(0n)!.addr).toBe(GUEST);
  });

  test("outside a batch, a failing set_map fails the write and leaves addr unchanged", () => {
    let fail = false;
    const r = rig({ remap: true, setMapHook: () => (fail ? -Errno.EIO : 0) });
    expect(r.send(T.UPDATE, 0n, PAGE, GUEST, 3)).toBe(OK);
    fail = true;
    expect(r.send(T.REMAP, 0n, PAGE, NEW)).toBe(EFAULT);
    expect(r.tree()).toEqual([{ start: 0n, last: PAGE - 1n, addr: GUEST, perm: 3 }]);
  });

  test("REMAP never allocates an address space: on a fresh device it is EINVAL, not ENOENT", () => {
    const r = rig({ remap: true });
    expect(r.send(T.REMAP, 0n, PAGE, NEW)).toBe(EFAULT);
    expect(r.dev.processIotlbMsg(r.mm, 0, { type: T.REMAP, iova: 0n, size: PAGE, uaddr: NEW, perm: 0 })).toBe(-Errno.EINVAL);
    expect(r.dev.iotlb(0)).toBeNull();
  });

  test("without the option, type 7 is an unknown message (EINVAL) and nothing changes", () => {
    const r = rig();
    expect(r.send(T.UPDATE, 0n, PAGE, GUEST, 3)).toBe(OK);
    expect(r.send(T.REMAP, 0n, PAGE, NEW)).toBe(EFAULT);
    expect(r.dev.processIotlbMsg(r.mm, 0, { type: T.REMAP, iova: 0n, size: PAGE, uaddr: NEW, perm: 0 })).toBe(-Errno.EINVAL);
    expect(r.tree()[0].addr).toBe(GUEST);
  });
});
