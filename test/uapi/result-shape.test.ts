import { Type1Handle, createVfioProcess } from "../../src/type1";
import { VhostIotlbApi, LiveUpdateWorld } from "../../src/vhost";
import { Errno, type KernelResult } from "../../src/uapi/errno";

// Issue 14: every typed API reports a kernel error in one shape, KernelResult:
// { ok: true, value } | { ok: false, errno, errnoName } (vhost used to say `name`).
const failureKeys = (r: KernelResult<unknown>): string[] => Object.keys(r).sort();

test("type1, vhost and the live-update flow fail with the same fields", () => {
  const h = Type1Handle.open(createVfioProcess());
  if (!h.ok) throw new Error(h.errnoName);
  const type1: KernelResult = h.value.mapDma({ iova: 0n, vaddr: 0n, size: 0n });
  expect(type1).toEqual({ ok: false, errno: Errno.EINVAL, errnoName: "EINVAL" });

  const vhost: KernelResult = new VhostIotlbApi(() => -Errno.EFAULT).update({ iova: 0n, size: 0x1000n, uaddr: 0n, perm: 3 });
  expect(vhost).toEqual({ ok: false, errno: Errno.EFAULT, errnoName: "EFAULT" });

  const world = new LiveUpdateWorld();
  const next = world.spawnNew();
  // An UPDATE for user address 0, which nothing maps.
  const step: KernelResult = world.send(next, 2, 0n, 0x1000n, 0n, 3);
  expect(step.ok ? "ok" : step.errnoName).toBe("EFAULT");

  for (const r of [type1, vhost, step]) expect(failureKeys(r)).toEqual(["errno", "errnoName", "ok"]);
  const ok: KernelResult = new VhostIotlbApi(() => 72).update({ iova: 0n, size: 0x1000n, uaddr: 0x1000n, perm: 3 });
  expect(Object.keys(ok).sort()).toEqual(["ok", "value"]);
});
