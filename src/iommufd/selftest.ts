/**
 * IOMMU_TEST_CMD, the parts the dirty-tracking selftests use (Gen A selftest.c):
 * MOCK_DOMAIN / MOCK_DOMAIN_FLAGS (a mock device bound and attached to an IOAS or HWPT)
 * and DIRTY (mark IOVAs dirty in a mock domain, as a device write would).
 */
import { Errno } from "../uapi/errno";
import * as U from "./uapi";
import type { IommufdCtx, Ucmd } from "./iommufd";
import type { DeviceObj, SelftestObj, HwptObj } from "./ioas";

/** Dispatches one struct iommu_test_cmd. */
export function testCmd(ctx: IommufdCtx, u: Ucmd): number {
  const op = u.dv.getUint32(4, true);
  switch (op) {
    case U.IOMMU_TEST_OP_MOCK_DOMAIN:
      return mockDomain(ctx, u, 0);
    case U.IOMMU_TEST_OP_MOCK_DOMAIN_FLAGS: {
      const flags = u.dv.getUint32(28, true);
      if (flags & ~(U.MOCK_FLAGS_DEVICE_NO_DIRTY | U.MOCK_FLAGS_DEVICE_HUGE_IOVA)) return -Errno.EINVAL;
      return mockDomain(ctx, u, flags);
    }
    case U.IOMMU_TEST_OP_DIRTY:
      return dirty(ctx, u);
    default:
      return -Errno.EOPNOTSUPP;
  }
}

/** iommufd_test_mock_domain(): selftest object, bound mock device, attach to `id`. */
function mockDomain(ctx: IommufdCtx, u: Ucmd, devFlags: number): number {
  const ptId = u.dv.getUint32(8, true);
  const target = ctx.objects.get(ptId);
  if (!target || (target.kind !== "ioas" && target.kind !== "hwpt")) return -Errno.ENOENT;
  // Attach checks first, so a failure leaves no object behind.
  if (target.kind === "hwpt" && target.domain.dirtyOps && devFlags & U.MOCK_FLAGS_DEVICE_NO_DIRTY) return -Errno.EINVAL;
  const stId = ctx.allocId();
  const dev: DeviceObj = { kind: "device", id: 0, flags: devFlags, hwpt: null, stdev: null };
  const st: SelftestObj = { kind: "selftest", id: stId, idev: dev };
  ctx.objects.set(stId, st);
  dev.id = ctx.allocId();
  dev.stdev = st;
  ctx.objects.set(dev.id, dev);
  let h: HwptObj;
  if (target.kind === "hwpt") h = target;
  else {
    const r = ctx.allocHwpt(target, dev, false, true);
    if (typeof r === "number") {
      ctx.objects.delete(dev.id);
      ctx.objects.delete(stId);
      return r;
    }
    h = r;
  }
  h.devices.add(dev);
  dev.hwpt = h;
  u.dv.setUint32(16, st.id, true);
  u.dv.setUint32(20, h.id, true);
  u.dv.setUint32(24, dev.id, true);
  return ctx.respond(u);
}

/** iommufd_test_dirty(): marks every IOVA whose bit is set in the user bitmap. */
function dirty(ctx: IommufdCtx, u: Ucmd): number {
  const iova = u.dv.getBigUint64(24, true);
  const length = u.dv.getBigUint64(32, true);
  const pageSize = u.dv.getBigUint64(40, true);
  const uptr = u.dv.getBigUint64(48, true);
  if (pageSize === 0n || length === 0n || iova % pageSize !== 0n || length % pageSize !== 0n || uptr === 0n) return -Errno.EINVAL;
  const h = ctx.get(u.dv.getUint32(8, true), "hwpt");
  if (!h) return -Errno.ENOENT;
  if (!h.domain.dirtyTracking) return -Errno.EINVAL;
  const nbits = length / pageSize;
  if (nbits > 1n << 32n) return -Errno.ENOMEM;
  const bytes = u.task.copyFromUser(uptr, Number((nbits + 7n) / 8n));
  if (!bytes) return -Errno.EFAULT;
  let count = 0;
  const n = Number(nbits);
  for (let i = 0; i < n; i++) {
    if (!(bytes[i >> 3] & (1 << (i & 7)))) continue;
    const at = iova + BigInt(i) * pageSize;
    if (at >= 1n << 53n) continue;
    if (h.domain.table.setDirty(Number(at)) === 0) count++; // Gen A counts present entries only
  }
  u.dv.setBigUint64(56, BigInt(count), true);
  return ctx.respond(u);
}
