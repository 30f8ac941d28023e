/**
 * The iommufd worlds of a vfio-trace script (`world mock`, `world edu`): the verbs the
 * runner (test/oracle/vfio-trace-run.c) issues on /dev/iommu, the IOMMUFD_TEST mock and
 * a VFIO device cdev, with the same struct bytes at the same user addresses, printing the
 * same words. See src/trace/trace-format.md.
 */
import { errnoName, Errno } from "../uapi/errno";
import { U64_MASK } from "../uapi/vfio";
import type { Process, SyscallResult } from "../process/process";
import { PROT_READ, PROT_WRITE } from "../process/vma";
import * as U from "../iommufd/uapi";
import { numOf, sval } from "./parse";
import { formatUserBuffer } from "./print";

/** The runner's own buffers (its .bss), far from the arena. */
const BSS = 0x7e00_0010_0000n;
const BSS_SIZE = 0x10000n;
const ARGBUF = BSS; // 8 KiB: the struct of each call
const RBUF = BSS + 0x2000n; // 256 struct iommu_iova_range
const IBUF = BSS + 0x6000n; // 4 KiB: GET_HW_INFO data
const DIRTYBITS = BSS + 0x7000n; // 64 u64: IOMMU_TEST_OP_DIRTY's bitmap
const STAGE = 4096;

/** The two iommufd worlds: the selftest mock (no VT-d) or the edu device's cdev (VT-d). */
export type IommufdWorldName = "mock" | "edu" | "mtty";

/** Where the model puts the edu device's VFIO cdev. */
export const EDU_CDEV_PATH = "/dev/vfio/devices/vfio0";

/** One world's state across cases: the /dev/iommu fd, the cdev fd and the `$NAME` values. */
export class IommufdWorld {
  iommufd = -1;
  cdev = -1;
  private vars = new Map<string, bigint>();
  protected toks: string[] = [];
  /** Set when the runner would have died (a segfault). */
  dead = false;
  /** What the recorder's shell prints for the runner's death. */
  deathMessage = "Segmentation fault";

  constructor(
    readonly proc: Process,
    readonly world: IommufdWorldName,
    private readonly arenaBase: bigint,
  ) {
    proc.mmap(BSS, BSS_SIZE, PROT_READ | PROT_WRITE);
  }

  /** open_iommufd(): a fresh /dev/iommu (and no cdev). Returns a FATAL line or "". */
  openIommufd(): string {
    if (this.cdev >= 0) this.proc.close(this.cdev);
    if (this.iommufd >= 0) this.proc.close(this.iommufd);
    this.cdev = -1;
    const r = this.proc.open("/dev/iommu");
    this.iommufd = r.ret;
    if (r.ret < 0) {
      this.dead = true;
      return `FATAL open /dev/iommu errno=${errnoName(r.errno)}\n`;
    }
    return "";
  }

  /** `case` in an iommufd world: forget the `$NAME` values, close both files, reopen /dev/iommu. */
  resetCase(): void {
    this.vars.clear();
    if (this.cdev >= 0) this.proc.close(this.cdev);
    this.cdev = -1;
    this.proc.close(this.iommufd);
    this.iommufd = -1;
  }

  protected getvar(v: string): bigint {
    const plus = v.indexOf("+");
    const name = (plus >= 0 ? v.slice(1, plus) : v.slice(1)).slice(0, 31);
    let x = 0n;
    for (const [k, val] of this.vars) if (k === name) x = val;
    return (x + (plus >= 0 ? numOf(["", `v=${v.slice(plus + 1)}`], "v", 0n, 0n) : 0n)) & U64_MASK;
  }

  protected setvar(name: string, v: bigint): void {
    if (name.length >= 32) return;
    if (!this.vars.has(name) && this.vars.size >= 256) return;
    this.vars.set(name, v);
  }

  protected has(key: string): boolean {
    return sval(this.toks, key) !== null;
  }

  /** num(): `$NAME[+N]`, `+N` (arena), `unlimited`, or a strtoull number. */
  num(key: string, def: bigint): bigint {
    const v = sval(this.toks, key);
    if (v === null) return def;
    if (v[0] === "$") return this.getvar(v);
    return numOf(this.toks, key, def, this.arenaBase);
  }

  protected keep(name: string, v: bigint): void {
    this.setvar(name, v);
    const as = sval(this.toks, "as");
    if (as !== null) this.setvar(as, v);
  }

  /** The staged struct of this call: zeroed, size word from `size`, `tail` after the kernel struct. */
  protected stage(ksize: number): DataView {
    const dv = new DataView(new ArrayBuffer(STAGE));
    dv.setUint32(0, Number(this.num("size", BigInt(ksize)) & 0xffff_ffffn), true);
    if (this.has("tail")) dv.setBigUint64(ksize, this.num("tail", 0n), true);
    return dv;
  }

  /** call(): the struct at `at` (or the runner's buffer), read-only during the call with ro=1, read back after. */
  protected call(fd: number, cmd: number, dv: DataView, ksize: number): SyscallResult | null {
    let n = dv.getUint32(0, true);
    if (n < ksize) n = ksize;
    if (n > STAGE) n = STAGE;
    const t = this.has("at") ? this.num("at", 0n) : ARGBUF;
    const bytes = new Uint8Array(dv.buffer, 0, n);
    if (this.proc.write(t, bytes).ret < 0) return null; // memcpy into memory it cannot write: SIGSEGV
    const pg = t & ~0xfffn;
    const pl = (t + BigInt(n) + 0xfffn - pg) & ~0xfffn;
    const ro = this.num("ro", 0n) !== 0n;
    if (ro) this.proc.mprotect(pg, pl, PROT_READ);
    const r = this.proc.ioctl(fd, cmd, t);
    if (ro) this.proc.mprotect(pg, pl, PROT_READ | PROT_WRITE);
    const back = this.proc.read(t, n);
    if (back) bytes.set(back);
    return r;
  }

  /** Executes one verb of the iommufd worlds: the text after `LINE VERB`, or null when the verb is not one of them. */
  step(toks: string[]): string | null {
    this.toks = toks;
    const op = toks[0];
    const p = this.proc;
    const res = (r: SyscallResult): string => ` = ${r.ret} ${r.errno ? errnoName(r.errno) : "OK"}`;
    const u32 = (key: string, def = 0n): number => Number(this.num(key, def) & 0xffff_ffffn);
    const hex = (v: bigint): string => `0x${v.toString(16)}`;
    const segv = (): string => {
      this.dead = true;
      return "\u0000SEGV";
    };
    const fd = this.iommufd;
    switch (op) {
      case "pinned":
        return ` = 0 OK locked_kb=${p.vmLckKb()} pinned_kb=${p.vmPinKb()}`;
      case "cap_sys_resource":
        return res(p.setCapSysResource(u32("on", 1n) !== 0));
      case "poke": {
        const h = sval(toks, "hex") ?? "";
        const a = this.num("addr", 0n);
        const out: number[] = [];
        for (let i = 0; 2 * i + 1 < h.length; i++) out.push(parseInt(h.slice(2 * i, 2 * i + 2), 16) & 0xff);
        if (out.some((x) => Number.isNaN(x))) return segv();
        if (out.length && p.write(a, new Uint8Array(out)).ret < 0) return segv();
        return " = 0 OK";
      }
      case "ioas_alloc": {
        const s = this.stage(U.SIZES.ioasAlloc.size);
        s.setUint32(4, u32("flags"), true);
        const r = this.call(fd, U.IOMMU_IOAS_ALLOC, s, U.SIZES.ioasAlloc.size);
        if (!r) return segv();
        let o = res(r);
        if (r.ret === 0) {
          const id = s.getUint32(8, true);
          o += ` ioas=${id}`;
          this.keep("ioas", BigInt(id));
        }
        return o;
      }
      case "ioas_map": {
        const s = this.stage(U.SIZES.ioasMap.size);
        s.setUint32(4, u32("flags", this.has("iova") ? 7n : 6n), true);
        s.setUint32(8, u32("ioas"), true);
        s.setBigUint64(16, this.num("user_va", 0n), true);
        s.setBigUint64(24, this.num("length", 0n), true);
        s.setBigUint64(32, this.num("iova", 0n), true);
        const r = this.call(fd, U.IOMMU_IOAS_MAP, s, U.SIZES.ioasMap.size);
        if (!r) return segv();
        let o = res(r);
        if (r.ret === 0) {
          const iova = s.getBigUint64(32, true);
          o += ` iova=${hex(iova)}`;
          this.keep("iova", iova);
        }
        return o;
      }
      case "ioas_copy": {
        const s = this.stage(U.SIZES.ioasCopy.size);
        s.setUint32(4, u32("flags", this.has("dst_iova") ? 7n : 6n), true);
        s.setUint32(8, u32("dst"), true);
        s.setUint32(12, u32("src"), true);
        s.setBigUint64(16, this.num("length", 0n), true);
        s.setBigUint64(24, this.num("dst_iova", 0n), true);
        s.setBigUint64(32, this.num("src_iova", 0n), true);
        const r = this.call(fd, U.IOMMU_IOAS_COPY, s, U.SIZES.ioasCopy.size);
        if (!r) return segv();
        let o = res(r);
        if (r.ret === 0) {
          const iova = s.getBigUint64(24, true);
          o += ` dst_iova=${hex(iova)}`;
          this.keep("iova", iova);
        }
        return o;
      }
      case "ioas_unmap": {
        const s = this.stage(U.SIZES.ioasUnmap.size);
        s.setUint32(4, u32("ioas"), true);
        s.setBigUint64(8, this.num("iova", 0n), true);
        s.setBigUint64(16, this.num("length", 0n), true);
        const r = this.call(fd, U.IOMMU_IOAS_UNMAP, s, U.SIZES.ioasUnmap.size);
        if (!r) return segv();
        return res(r) + (r.ret === 0 ? ` length=${hex(s.getBigUint64(16, true))}` : "");
      }
      case "iova_ranges": {
        const s = this.stage(U.SIZES.iovaRanges.size);
        p.write(RBUF, new Uint8Array(256 * 16));
        const want = u32("num");
        s.setUint32(4, u32("ioas"), true);
        s.setUint32(8, want, true);
        s.setBigUint64(16, this.has("data") ? this.num("data", 0n) : RBUF, true);
        const r = this.call(fd, U.IOMMU_IOAS_IOVA_RANGES, s, U.SIZES.iovaRanges.size);
        if (!r) return segv();
        let o = res(r);
        if (r.ret === 0 || r.errno === Errno.EMSGSIZE) o += ` num=${s.getUint32(8, true)} align=${hex(s.getBigUint64(24, true))}`;
        if (r.ret === 0) {
          const got = s.getUint32(8, true);
          const n = got < want ? got : want;
          const at = s.getBigUint64(16, true);
          for (let i = 0; i < n; i++) {
            const b = p.read((at + BigInt(i * 16)) & U64_MASK, 16);
            if (!b) {
              o += " ?";
              break;
            }
            const v = new DataView(b.buffer, b.byteOffset, 16);
            o += ` ${hex(v.getBigUint64(0, true))}-${hex(v.getBigUint64(8, true))}`;
          }
        }
        return o;
      }
      case "allow_iovas": {
        const s = this.stage(U.SIZES.allowIovas.size);
        const ranges = parseRanges(sval(toks, "ranges"));
        const rb = new DataView(new ArrayBuffer(256 * 16));
        ranges.forEach(([a, b], i) => {
          rb.setBigUint64(i * 16, a, true);
          rb.setBigUint64(i * 16 + 8, b, true);
        });
        p.write(RBUF, new Uint8Array(rb.buffer));
        s.setUint32(4, u32("ioas"), true);
        s.setUint32(8, u32("num", BigInt(ranges.length)), true);
        s.setBigUint64(16, this.has("data") ? this.num("data", 0n) : RBUF, true);
        const r = this.call(fd, U.IOMMU_IOAS_ALLOW_IOVAS, s, U.SIZES.allowIovas.size);
        return r ? res(r) : segv();
      }
      case "option": {
        const s = this.stage(U.SIZES.option.size);
        s.setUint32(4, u32("option"), true);
        s.setUint16(8, Number(this.num("op", 0n) & 0xffffn), true);
        s.setUint32(12, u32("object"), true);
        s.setBigUint64(16, this.num("val", 0n), true);
        const r = this.call(fd, U.IOMMU_OPTION, s, U.SIZES.option.size);
        if (!r) return segv();
        return res(r) + (r.ret === 0 ? ` val=${hex(s.getBigUint64(16, true))}` : "");
      }
      case "hwpt_alloc": {
        const s = this.stage(U.SIZES.hwptAlloc.size);
        s.setUint32(4, u32("flags"), true);
        s.setUint32(8, u32("dev"), true);
        s.setUint32(12, u32("pt"), true);
        s.setUint32(24, u32("data_type"), true);
        s.setUint32(28, u32("data_len"), true);
        s.setBigUint64(32, this.num("data", 0n), true);
        s.setUint32(40, u32("fault_id"), true);
        const r = this.call(fd, U.IOMMU_HWPT_ALLOC, s, U.SIZES.hwptAlloc.size);
        if (!r) return segv();
        let o = res(r);
        if (r.ret === 0) {
          const id = s.getUint32(16, true);
          o += ` hwpt=${id}`;
          this.keep("hwpt", BigInt(id));
        }
        return o;
      }
      case "hw_info": {
        const s = this.stage(U.SIZES.hwInfo.size);
        p.write(IBUF, new Uint8Array(4096));
        const len = u32("data_len", 64n);
        s.setUint32(4, u32("flags"), true);
        s.setUint32(8, u32("dev"), true);
        s.setUint32(12, len, true);
        const data = this.has("data") ? this.num("data", 0n) : IBUF;
        s.setBigUint64(16, data, true);
        const show = this.num("show", BigInt(len > 256 ? 256 : len));
        const r = this.call(fd, U.IOMMU_GET_HW_INFO, s, U.SIZES.hwInfo.size);
        if (!r) return segv();
        let o = res(r);
        if (r.ret === 0) {
          o += ` type=0x${s.getUint32(24, true).toString(16)} data_len=${s.getUint32(12, true)} caps=${hex(s.getBigUint64(32, true))} pasid_log2=${s.getUint8(28)}`;
          o += ` data=${formatUserBuffer(p, s.getBigUint64(16, true), show)}`;
        }
        return o;
      }
      case "set_dirty": {
        const s = this.stage(U.SIZES.setDirtyTracking.size);
        s.setUint32(4, u32("flags", 1n), true);
        s.setUint32(8, u32("hwpt"), true);
        const r = this.call(fd, U.IOMMU_HWPT_SET_DIRTY_TRACKING, s, U.SIZES.setDirtyTracking.size);
        return r ? res(r) : segv();
      }
      case "get_dirty": {
        const s = this.stage(U.SIZES.getDirtyBitmap.size);
        s.setUint32(4, u32("hwpt"), true);
        s.setUint32(8, u32("flags"), true);
        const length = this.num("length", 0n);
        const pageSize = this.num("page_size", 0n);
        s.setBigUint64(16, this.num("iova", 0n), true);
        s.setBigUint64(24, length, true);
        s.setBigUint64(32, pageSize, true);
        s.setBigUint64(40, this.has("data") ? this.num("data", 0n) : 0n, true);
        const nbits = pageSize ? length / pageSize : 0n;
        const show = this.num("show", (nbits + 7n) / 8n);
        const r = this.call(fd, U.IOMMU_HWPT_GET_DIRTY_BITMAP, s, U.SIZES.getDirtyBitmap.size);
        if (!r) return segv();
        return res(r) + (this.has("data") ? ` bitmap=${formatUserBuffer(p, this.num("data", 0n), show)}` : "");
      }
      case "destroy": {
        const s = this.stage(U.SIZES.destroy.size);
        s.setUint32(4, u32("id"), true);
        const r = this.call(fd, U.IOMMU_DESTROY, s, U.SIZES.destroy.size);
        return r ? res(r) : segv();
      }
      case "mock_domain": {
        const fl = this.has("dev_flags");
        const s = this.testCmd(fl ? U.IOMMU_TEST_OP_MOCK_DOMAIN_FLAGS : U.IOMMU_TEST_OP_MOCK_DOMAIN, u32("id"));
        if (fl) s.setUint32(28, u32("dev_flags"), true);
        const r = this.call(fd, U.IOMMU_TEST_CMD, s, U.SIZES.testCmd.size);
        if (!r) return segv();
        let o = res(r);
        if (r.ret === 0) {
          const [st, hw, id] = [s.getUint32(16, true), s.getUint32(20, true), s.getUint32(24, true)];
          o += ` stdev=${st} hwpt=${hw} idev=${id}`;
          this.setvar("stdev", BigInt(st));
          this.setvar("hwpt", BigInt(hw));
          this.setvar("idev", BigInt(id));
          const as = sval(toks, "as");
          if (as !== null) {
            this.setvar(as, BigInt(st));
            this.setvar(`${as}_hwpt`.slice(0, 39), BigInt(hw));
            this.setvar(`${as}_idev`.slice(0, 39), BigInt(id));
          }
        }
        return o;
      }
      case "mock_domain_replace": {
        const s = this.testCmd(U.IOMMU_TEST_OP_MOCK_DOMAIN_REPLACE, u32("id"));
        s.setUint32(16, u32("pt"), true);
        const r = this.call(fd, U.IOMMU_TEST_CMD, s, U.SIZES.testCmd.size);
        if (!r) return segv();
        return res(r) + (r.ret === 0 ? ` pt=${s.getUint32(16, true)}` : "");
      }
      case "add_reserved": {
        const s = this.testCmd(U.IOMMU_TEST_OP_ADD_RESERVED, u32("ioas"));
        s.setBigUint64(16, this.num("iova", 0n), true);
        s.setBigUint64(24, this.num("length", 0n), true);
        const r = this.call(fd, U.IOMMU_TEST_CMD, s, U.SIZES.testCmd.size);
        return r ? res(r) : segv();
      }
      case "test_dirty": {
        const s = this.testCmd(U.IOMMU_TEST_OP_DIRTY, u32("hwpt"));
        const bits = new DataView(new ArrayBuffer(512));
        bits.setBigUint64(0, this.num("bits", 0n), true);
        p.write(DIRTYBITS, new Uint8Array(bits.buffer));
        s.setBigUint64(24, this.num("iova", 0n), true);
        s.setBigUint64(32, this.num("length", 0n), true);
        s.setBigUint64(40, this.num("page_size", 0n), true);
        s.setBigUint64(48, this.has("data") ? this.num("data", 0n) : DIRTYBITS, true);
        const r = this.call(fd, U.IOMMU_TEST_CMD, s, U.SIZES.testCmd.size);
        if (!r) return segv();
        return res(r) + (r.ret === 0 ? ` nr=${s.getBigUint64(56, true)}` : "");
      }
      case "md_check_map": {
        const s = this.testCmd(U.IOMMU_TEST_OP_MD_CHECK_MAP, u32("hwpt"));
        s.setBigUint64(16, this.num("iova", 0n), true);
        s.setBigUint64(24, this.num("length", 0n), true);
        s.setBigUint64(32, this.num("uptr", 0n), true);
        const r = this.call(fd, U.IOMMU_TEST_CMD, s, U.SIZES.testCmd.size);
        return r ? res(r) : segv();
      }
      case "cdev_open": {
        if (this.cdev >= 0) p.close(this.cdev);
        if (this.world !== "edu") {
          this.cdev = -1;
          return ` = -1 ${errnoName(Errno.ENODEV)}`;
        }
        const r = p.open(EDU_CDEV_PATH);
        this.cdev = r.ret;
        return r.ret < 0 ? res(r) : " = 0 OK";
      }
      case "cdev_close": {
        const r = p.close(this.cdev);
        this.cdev = -1;
        return res(r);
      }
      case "bind": {
        const s = this.stage(U.VFIO_CDEV_SIZES.bind);
        s.setUint32(4, u32("flags"), true);
        s.setInt32(8, this.has("fd") ? Number(BigInt.asIntN(32, this.num("fd", 0n))) : this.iommufd, true);
        const r = this.call(this.cdev, U.VFIO_DEVICE_BIND_IOMMUFD, s, U.VFIO_CDEV_SIZES.bind);
        if (!r) return segv();
        let o = res(r);
        if (r.ret === 0) {
          const id = s.getUint32(12, true);
          o += ` devid=${id}`;
          this.keep("devid", BigInt(id));
        }
        return o;
      }
      case "attach": {
        const s = this.stage(U.VFIO_CDEV_SIZES.attach);
        s.setUint32(4, u32("flags"), true);
        s.setUint32(8, u32("pt"), true);
        const r = this.call(this.cdev, U.VFIO_DEVICE_ATTACH_IOMMUFD_PT, s, U.VFIO_CDEV_SIZES.attach);
        if (!r) return segv();
        let o = res(r);
        if (r.ret === 0) {
          const id = s.getUint32(8, true);
          o += ` pt=${id}`;
          this.keep("pt", BigInt(id));
        }
        return o;
      }
      case "detach": {
        const s = this.stage(U.VFIO_CDEV_SIZES.detach);
        s.setUint32(4, u32("flags"), true);
        const r = this.call(this.cdev, U.VFIO_DEVICE_DETACH_IOMMUFD_PT, s, U.VFIO_CDEV_SIZES.detach);
        return r ? res(r) : segv();
      }
      case "device_info": {
        const s = this.stage(U.VFIO_CDEV_SIZES.deviceInfo);
        const r = this.call(this.cdev, U.VFIO_DEVICE_GET_INFO, s, U.VFIO_CDEV_SIZES.deviceInfo);
        if (!r) return segv();
        return (
          res(r) +
          (r.ret === 0
            ? ` argsz=${s.getUint32(0, true)} flags=0x${s.getUint32(4, true).toString(16)} regions=${s.getUint32(8, true)} irqs=${s.getUint32(12, true)} cap_offset=${s.getUint32(16, true)}`
            : "")
        );
      }
      default:
        return null;
    }
  }

  private testCmd(op: number, id: number): DataView {
    const s = this.stage(U.SIZES.testCmd.size);
    s.setUint32(4, op, true);
    s.setUint32(8, id, true);
    return s;
  }
}

/** `S-L,S-L,...` as the runner's parse_ranges() reads it (strtoull; at most 256). */
function parseRanges(v: string | null): [bigint, bigint][] {
  const out: [bigint, bigint][] = [];
  let rest = v;
  while (rest && rest.length && out.length < 256) {
    const m = /^\s*[+-]?(0[xX][0-9a-fA-F]+|0[0-7]*|[1-9][0-9]*)?/.exec(rest)!;
    const a = m[1] ? numOf(["", `v=${m[1]}`], "v", 0n, 0n) : 0n;
    let e = rest.slice(m[0].length);
    let b = a;
    if (e[0] === "-") {
      const m2 = /^\s*[+-]?(0[xX][0-9a-fA-F]+|0[0-7]*|[1-9][0-9]*)?/.exec(e.slice(1))!;
      b = m2[1] ? numOf(["", `v=${m2[1]}`], "v", 0n, 0n) : 0n;
      e = e.slice(1 + m2[0].length);
    }
    out.push([a, b]);
    rest = e[0] === "," ? e.slice(1) : null;
  }
  return out;
}
