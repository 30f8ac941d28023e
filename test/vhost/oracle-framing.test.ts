/**
 * vhost_chr_write_iter framing against a real Linux 6.1 (Debian 6.1.0-56): the cases of
 * test/vhost/oracle-tools/vhost-write-cases.c were run on /dev/vhost-net (the image has no
 * vhost-vdpa; both devices share vhost_chr_write_iter, and every case here is decided
 * there or is a message type both handlers reject). Recorded output:
 * test/vhost/oracle/vhost-net-framing.out. The model's vhost-vdpa must print the same
 * line for every write case. Setup lines differ by device (vhost-net needs
 * VIRTIO_F_ACCESS_PLATFORM to get an IOTLB) and are not compared.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { errnoName } from "../../src/uapi/errno";
import { VHOST_SET_BACKEND_FEATURES, VhostBackendFeature as F, backendFeatureMask as bit } from "../../src/uapi/vhost";
import { GUEST, SCRATCH, rig } from "./helpers";

const SETUP = new Set(["set-owner", "set-features", "set-backend-features"]);

test("every write case gives Linux's answer", () => {
  const recorded = readFileSync(join(__dirname, "oracle", "vhost-net-framing.out"), "utf8")
    .trim()
    .split("\n")
    .slice(1) // uname -r
    .filter((l) => !SETUP.has(l.split(" = ")[0]));

  const r = rig();
  const f = new Uint8Array(8);
  new DataView(f.buffer).setBigUint64(0, bit(F.IOTLB_MSG_V2), true);
  r.mm.copyToUser(SCRATCH + 0x800n, f);
  expect(r.dev.ioctl(r.mm, VHOST_SET_BACKEND_FEATURES, SCRATCH + 0x800n)).toBe(0);

  const out: string[] = [];
  const report = (name: string, ret: number) => out.push(ret < 0 ? `${name} = -1 ${errnoName(-ret)}` : `${name} = ${ret}`);
  // Same layout as the C program: the message at buf (scratch + 2048), 128 zeroed bytes.
  const buf = SCRATCH + 2048n;
  const msg = (name: string, hdr: number, asid: number, type: number, iova: bigint, size: bigint, uaddr: bigint, perm: number, count: number) => {
    const b = new Uint8Array(128);
    const dv = new DataView(b.buffer);
    dv.setUint32(0, hdr, true);
    dv.setUint32(4, asid, true);
    dv.setBigUint64(8, iova, true);
    dv.setBigUint64(16, size, true);
    dv.setBigUint64(24, uaddr, true);
    b[32] = perm;
    b[33] = type;
    r.mm.copyToUser(buf, b);
    report(name, r.dev.write(r.mm, buf, count));
  };
  const ua = GUEST;
  msg("update-v2", 2, 0, 2, 0x0n, 0x1000n, ua, 3, 72);
  msg("update-v1-header", 1, 0, 2, 0x1000n, 0x1000n, ua, 3, 72);
  msg("count-3", 2, 0, 2, 0x2000n, 0x1000n, ua, 3, 3);
  msg("count-7", 2, 0, 2, 0x2000n, 0x1000n, ua, 3, 7);
  msg("count-39", 2, 0, 2, 0x2000n, 0x1000n, ua, 3, 39);
  msg("count-40", 2, 0, 2, 0x2000n, 0x1000n, ua, 3, 40);
  msg("count-100", 2, 0, 2, 0x3000n, 0x1000n, ua, 3, 100);
  msg("header-type-3", 3, 0, 2, 0x4000n, 0x1000n, ua, 3, 72);
  msg("header-type-0", 0, 0, 2, 0x4000n, 0x1000n, ua, 3, 72);
  msg("asid-5-not-negotiated", 2, 5, 2, 0x4000n, 0x1000n, ua, 3, 72);
  msg("update-size-0", 2, 0, 2, 0x5000n, 0n, ua, 3, 72);
  msg("invalidate-size-0-iova-0x9000", 2, 0, 3, 0x9000n, 0n, 0n, 0, 72);
  msg("invalidate", 2, 0, 3, 0x1000n, 0x1000n, 0n, 0, 72);
  msg("type-miss", 2, 0, 1, 0x6000n, 0x1000n, ua, 3, 72);
  msg("type-access-fail", 2, 0, 4, 0x6000n, 0x1000n, ua, 3, 72);
  msg("type-7-remap", 2, 0, 7, 0x0n, 0x1000n, ua, 0, 72);
  msg("type-0", 2, 0, 0, 0x6000n, 0x1000n, ua, 3, 72);
  report("unmapped-buffer", r.dev.write(r.mm, 0x6000_0000_0000n, 72));
  msg("invalidate-all-size-0", 2, 0, 3, 0x0n, 0n, 0n, 0, 72);

  expect(out).toEqual(recorded);
  expect(r.tree()).toEqual([]);
});
