/**
 * IOMMU_TEST_CMD, the parts the iommufd selftests use (6.12 selftest.c): MOCK_DOMAIN /
 * MOCK_DOMAIN_FLAGS (a mock device bound and attached to an IOAS or HWPT),
 * MOCK_DOMAIN_REPLACE, ADD_RESERVED, MD_CHECK_MAP and DIRTY (mark IOVAs dirty in a mock
 * domain, as a device write would).
 */
import { Errno } from "../uapi/errno";
import * as U from "./uapi";
import type { Ucmd } from "./ucmd";
import { reserveIova } from "./ioas";
import type { DeviceObj, HwptObj, IoasObj, IommufdObj, SelftestObj } from "./ioas";

/**
 * What IOMMU_TEST_CMD needs of struct iommufd_ctx (IommufdCtx implements it): declared here
 * so that the selftest does not import the ioctl layer that dispatches to it.
 */
export interface SelftestHost {
  readonly objects: Map<number, IommufdObj>;
  allocId(): number;
  get<K extends IommufdObj["kind"]>(id: number, kind: K): Extract<IommufdObj, { kind: K }> | null;
  respond(u: Ucmd): number;
  attachTo(dev: DeviceObj, target: IoasObj | HwptObj): HwptObj | number;
  replace(dev: DeviceObj, target: IoasObj | HwptObj): HwptObj | number;
  detach(dev: DeviceObj): void;
}

/** Dispatches one struct iommu_test_cmd. */
export function testCmd(ctx: SelftestHost, u: Ucmd): number {
  const op = u.dv.getUint32(4, true);
  switch (op) {
    case U.IOMMU_TEST_OP_ADD_RESERVED:
      return addReserved(ctx, u);
    case U.IOMMU_TEST_OP_MOCK_DOMAIN:
      return mockDomain(ctx, u, 0);
    case U.IOMMU_TEST_OP_MOCK_DOMAIN_FLAGS:
      return mockDomain(ctx, u, u.dv.getUint32(28, true));
    case U.IOMMU_TEST_OP_MOCK_DOMAIN_REPLACE:
      return mockDomainReplace(ctx, u);
    case U.IOMMU_TEST_OP_MD_CHECK_MAP:
      return mdCheckPa(ctx, u);
    case U.IOMMU_TEST_OP_DIRTY:
      return dirty(ctx, u);
    default:
      return -Errno.EOPNOTSUPP;
  }
}

/** iommufd_test_add_reserved(): a reserved range with no owner (never removed). */
function addReserved(ctx: SelftestHost, u: Ucmd): number {
  const ioas = ctx.get(u.dv.getUint32(8, true), "ioas");
  if (!ioas) return -Errno.ENOENT;
  const start = u.dv.getBigUint64(16, true);
  const length = u.dv.getBigUint64(24, true);
  return reserveIova(ioas, start, (start + length - 1n) & U.U64_MAX, null);
}

/**
 * iommufd_test_mock_domain(): selftest object, a mock device bound to the context, attached
 * to `id` (an automatic HWPT for an IOAS); every step unwound when a later one fails,
 * including the answer that cannot be written.
 */
function mockDomain(ctx: SelftestHost, u: Ucmd, devFlags: number): number {
  const stId = ctx.allocId();
  const st: SelftestObj = { kind: "selftest", id: stId, idev: null as unknown as DeviceObj };
  ctx.objects.set(stId, st);
  const abort = (r: number): number => {
    ctx.objects.delete(stId);
    return r;
  };
  // mock_dev_create()
  if (devFlags & ~(U.MOCK_FLAGS_DEVICE_NO_DIRTY | U.MOCK_FLAGS_DEVICE_HUGE_IOVA)) return abort(-Errno.EINVAL);
  // iommufd_device_bind()
  const dev: DeviceObj = { kind: "device", id: ctx.allocId(), flags: devFlags, hwpt: null, stdev: st };
  st.idev = dev;
  ctx.objects.set(dev.id, dev);
  const unbind = (r: number): number => {
    ctx.objects.delete(dev.id);
    return abort(r);
  };
  // iommufd_device_attach(): the selftest object is not finalized yet, so invisible
  const ptId = u.dv.getUint32(8, true);
  const target = ptId === stId ? undefined : ctx.objects.get(ptId);
  if (!target) return unbind(-Errno.ENOENT);
  if (target.kind !== "ioas" && target.kind !== "hwpt") return unbind(-Errno.EINVAL);
  const h = ctx.attachTo(dev, target);
  if (typeof h === "number") return unbind(h);
  u.dv.setUint32(16, st.id, true);
  u.dv.setUint32(20, h.id, true);
  u.dv.setUint32(24, dev.id, true);
  const r = ctx.respond(u);
  if (r < 0) {
    ctx.detach(dev);
    return unbind(r);
  }
  return 0;
}

/** iommufd_test_mock_domain_replace(): iommufd_device_replace() of a selftest object's device. */
function mockDomainReplace(ctx: SelftestHost, u: Ucmd): number {
  const st = ctx.get(u.dv.getUint32(8, true), "selftest");
  if (!st) return -Errno.ENOENT;
  const dev = st.idev;
  const target = ctx.objects.get(u.dv.getUint32(16, true));
  if (!target) return -Errno.ENOENT;
  if (target.kind !== "ioas" && target.kind !== "hwpt") return -Errno.EINVAL;
  const h = ctx.replace(dev, target);
  if (typeof h === "number") return h;
  u.dv.setUint32(16, h.id, true);
  return ctx.respond(u);
}

/** iommufd_test_md_check_pa(): each MOCK_IO_PAGE of [iova, +length) maps the page at uptr. */
function mdCheckPa(ctx: SelftestHost, u: Ucmd): number {
  const iova = u.dv.getBigUint64(16, true);
  const length = u.dv.getBigUint64(24, true);
  const uptr = u.dv.getBigUint64(32, true);
  const P = BigInt(U.MOCK_PAGE_SIZE);
  if (iova % P || length % P || uptr % P || uptr + length > U.U64_MAX) return -Errno.EINVAL;
  const o = ctx.objects.get(u.dv.getUint32(8, true));
  if (!o || o.kind !== "hwpt") return -Errno.ENOENT;
  if (o.devices.size && [...o.devices].some((d) => d.iommu)) return -Errno.EINVAL; // not a mock domain
  for (let off = 0n; off < length; off += P) {
    if (!u.task.copyFromUser((uptr + off) & ~0xfffn, 1)) return -Errno.EFAULT;
    const at = iova + off;
    const phys = at < 1n << 53n ? o.domain.iovaToPhys(Number(at)) : -1;
    if (phys < 0 || BigInt(phys) !== uptr + off) return -Errno.EINVAL;
  }
  return 0;
}

/** iommufd_test_dirty(): marks every IOVA whose bit is set in the user bitmap. */
function dirty(ctx: SelftestHost, u: Ucmd): number {
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
    // The mock looks the entry up at index cur / page_size of its MOCK_IO_PAGE_SIZE-indexed
    // pfns xarray: with any other page_size it marks the IO page at that index instead.
    const at = ((iova + BigInt(i) * pageSize) / pageSize) * BigInt(U.MOCK_PAGE_SIZE);
    if (at >= 1n << 53n) continue;
    if (h.domain.table.setDirty(Number(at)) === 0) count++; // counts present entries only
  }
  u.dv.setBigUint64(56, BigInt(count), true);
  return ctx.respond(u);
}
