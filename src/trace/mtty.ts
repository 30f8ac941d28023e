/**
 * The `world mtty` of a vfio-trace script: the 6.12 test kernel's mtty sample as an mdev
 * (mtty-2), its VFIO cdev bound to the case's /dev/iommu, and the device-fd verbs of the
 * runner (test/oracle/vfio-trace-run.c): VFIO_DEVICE_FEATURE (raw, and MIGRATION /
 * MIG_DEVICE_STATE / MIG_DATA_SIZE / DMA_LOGGING_*), VFIO_MIG_GET_PRECOPY_INFO and read /
 * write / close on the data fds, VFIO_DEVICE_RESET. Every `case` starts a fresh mdev, as
 * the runner removes and re-creates it. The iommufd verbs of the other worlds work here
 * too (`device_info` on the device fd).
 */
import { errnoName, Errno } from "../uapi/errno";
import {
  DeviceFeature,
  VFIO_DEVICE_BIND_IOMMUFD,
  VFIO_DEVICE_FEATURE,
  VFIO_DEVICE_FEATURE_DMA_LOGGING_REPORT,
  VFIO_DEVICE_FEATURE_DMA_LOGGING_START,
  VFIO_DEVICE_FEATURE_DMA_LOGGING_STOP,
  VFIO_DEVICE_FEATURE_GET,
  VFIO_DEVICE_FEATURE_MIG_DATA_SIZE,
  VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE,
  VFIO_DEVICE_FEATURE_MIGRATION,
  VFIO_DEVICE_FEATURE_SET,
  VFIO_DEVICE_RESET,
  VFIO_MIG_GET_PRECOPY_INFO,
} from "../uapi/vfio";
import type { Process, SyscallResult } from "../process/process";
import type { UserAccess } from "../process/file";
import { isTask } from "../process/task";
import { PROT_READ, PROT_WRITE } from "../process/vma";
import { IommufdCtx } from "../iommufd/iommufd";
import { MttyDevice } from "../vfio/mtty";
import { VfioCoreDevice, type VfioIommufdBinding } from "../vfio/vfio-main";
import { installVfioDevice } from "../vfio/device";
import { IommufdWorld } from "./iommufd";
import { vtdPlatform, type PlatformGroup } from "../iommu/platform";
import { installVfio, registerGroupDevice } from "../type1/container";
import { VFIO_GROUP_GET_DEVICE_FD, VFIO_GROUP_SET_CONTAINER, VFIO_SET_IOMMU } from "../uapi/vfio";
import { numOf, sval } from "./parse";
import { formatUserBuffer } from "./print";

/** Where the model puts the mtty mdev's VFIO cdev. */
export const MTTY_CDEV_PATH = "/dev/vfio/devices/vfio1";
/** The mdev's name (the recorder's UUID) and its emulated IOMMU group's id in the model. */
export const MTTY_UUID = "83b8f4f2-509f-382f-3c1e-e6bfe0fa1001";
const MTTY_GROUP_ID = 1;
/** The runner's own buffers of this world (its .bss), apart from the iommufd world's. */
const MTTY_BSS = 0x7e00_0020_0000n;
const RBUF = MTTY_BSS; // 256 ranges of 16 bytes
const RDBUF = MTTY_BSS + 0x1000n; // 64 KiB: data_read's default buffer
const FDBUF = MTTY_BSS + 0x11000n; // the container fd for SET_CONTAINER, the device name
const MTTY_BSS_SIZE = 0x12000n;
/** EBADFD: BIND_IOMMUFD with a file that is not /dev/iommu. */
const EBADFD = 77;

/**
 * VFIO_DEVICE_BIND_IOMMUFD for an emulated device (vfio_df_ioctl_bind_iommufd with
 * vfio_iommufd_emulated_bind): the argument checks and the iommufd fd check. The devid
 * written back is not modelled (the runner does not print it in this world): 0.
 */
class EmulatedBinding implements VfioIommufdBinding {
  bind(task: UserAccess, arg: bigint): number {
    const b = task.copyFromUser(arg, 16);
    if (!b) return -Errno.EFAULT;
    const dv = new DataView(b.buffer, b.byteOffset, 16);
    const fd = dv.getInt32(8, true);
    if (dv.getUint32(0, true) < 16 || dv.getUint32(4, true) || fd < 0) return -Errno.EINVAL;
    if (!isTask(task)) return -Errno.EBADF;
    const f = task.fdget(fd);
    if (!f) return -Errno.EBADF;
    if (!(f instanceof IommufdCtx)) return -EBADFD;
    return 0;
  }

  unbind(): void {}
}

/** The mtty world: an IommufdWorld plus the mdev and the device-fd verbs. */
export class MttyWorld extends IommufdWorld {
  /** The case's device (a fresh mdev per case). */
  mtty!: MttyDevice;
  private dataFds: number[] = [];
  private container = -1;
  private group = -1;
  /** The mdev's emulated IOMMU group. */
  private readonly mdevGroup: PlatformGroup = { id: MTTY_GROUP_ID, devices: [{ name: MTTY_UUID, resv: [] }], emulated: true };

  constructor(proc: Process, arenaBase: bigint) {
    super(proc, "mtty", arenaBase);
    proc.mmap(MTTY_BSS, MTTY_BSS_SIZE, PROT_READ | PROT_WRITE);
    const platform = vtdPlatform();
    platform.groups.push(this.mdevGroup);
    installVfio(proc, platform);
    this.createMdev();
  }

  /** The mdev's creation: a fresh device behind both its cdev and its group. */
  private createMdev(): void {
    this.mtty = new MttyDevice({ nrPorts: 2 });
    const core = new VfioCoreDevice(this.mtty);
    registerGroupDevice(this.mdevGroup, MTTY_UUID, core);
    installVfioDevice(this.proc, MTTY_CDEV_PATH, core, () => ({ kind: "cdev", binding: new EmulatedBinding() }));
  }

  /** `case`: close the data fds, the device fd, the group and container, then /dev/iommu; re-create the mdev. */
  override resetCase(): void {
    for (const fd of this.dataFds) this.proc.close(fd);
    this.dataFds = [];
    if (this.cdev >= 0) this.proc.close(this.cdev);
    this.cdev = -1;
    this.closeGroup();
    super.resetCase();
    this.setvar("data", 0xffff_ffff_ffff_ffffn); // no data fd yet: fd=$data is -1, never stdin
    this.createMdev();
  }

  private closeGroup(): void {
    if (this.group >= 0) this.proc.close(this.group);
    if (this.container >= 0) this.proc.close(this.container);
    this.group = this.container = -1;
  }

  /** dev_open via=group: a fresh container and the group, SET_CONTAINER, SET_IOMMU, GET_DEVICE_FD. */
  private openViaGroup(): SyscallResult {
    const p = this.proc;
    if (this.cdev >= 0) p.close(this.cdev);
    this.cdev = -1;
    this.closeGroup();
    const c = p.open("/dev/vfio/vfio");
    this.container = c.ret;
    const g = p.open(`/dev/vfio/${MTTY_GROUP_ID}`);
    this.group = g.ret;
    if (c.ret < 0) return c;
    if (g.ret < 0) return g;
    if (this.num("container", 1n) !== 0n) {
      const fdb = new Uint8Array(4);
      new DataView(fdb.buffer).setInt32(0, this.container, true);
      p.write(FDBUF, fdb);
      let r = p.ioctl(this.group, VFIO_GROUP_SET_CONTAINER, FDBUF);
      if (r.ret) return r;
      r = p.ioctl(this.container, VFIO_SET_IOMMU, this.num("iommu", 3n));
      if (r.ret) return r;
    }
    p.write(FDBUF, new TextEncoder().encode(`${sval(this.toks, "name") ?? MTTY_UUID}\0`));
    const d = p.ioctl(this.group, VFIO_GROUP_GET_DEVICE_FD, FDBUF);
    this.cdev = d.ret;
    return d.ret < 0 ? d : { ret: 0, errno: 0 };
  }

  override step(toks: string[]): string | null {
    const base = super.step(toks);
    if (base !== null) return base;
    this.toks = toks;
    const r = this.mttyStep(toks[0]);
    if (this.mtty.oops && !this.dead) {
      // The kernel oopsed in the runner's call: the shell reports the runner as killed.
      this.dead = true;
      this.deathMessage = "Killed";
    }
    return r;
  }

  private fdArg(): number {
    return Number(BigInt.asIntN(32, this.num("fd", this.getvar("$data"))));
  }

  /** feature_call(): the header (flags from `flags`, default `def`) over a staged struct with `n` payload bytes. */
  private feature(s: DataView, def: number, n: number): SyscallResult | null {
    s.setUint32(4, Number(this.num("flags", BigInt(def)) & 0xffff_ffffn), true);
    return this.call(this.cdev, VFIO_DEVICE_FEATURE, s, DeviceFeature.MINSZ + n);
  }

  private mttyStep(op: string): string | null {
    const p = this.proc;
    const res = (r: SyscallResult): string => ` = ${r.ret} ${r.errno ? errnoName(r.errno) : "OK"}`;
    const segv = (): string => {
      this.dead = true;
      return "\u0000SEGV";
    };
    const hex = (v: bigint): string => `0x${v.toString(16)}`;
    switch (op) {
      case "dev_open": {
        if (sval(this.toks, "via") === "group") return res(this.openViaGroup());
        if (this.cdev >= 0) p.close(this.cdev);
        const o = p.open(MTTY_CDEV_PATH);
        this.cdev = o.ret;
        if (o.ret < 0 || this.num("bind", 1n) === 0n) return res(o.ret < 0 ? o : { ret: 0, errno: 0 });
        const b = new DataView(new ArrayBuffer(16));
        b.setUint32(0, 16, true);
        b.setInt32(8, this.iommufd, true);
        p.write(RDBUF, new Uint8Array(b.buffer));
        return res(p.ioctl(this.cdev, VFIO_DEVICE_BIND_IOMMUFD, RDBUF));
      }
      case "dev_close": {
        const r = p.close(this.cdev);
        this.cdev = -1;
        return res(r);
      }
      case "feature": {
        const h = sval(this.toks, "hex");
        let n = h ? Math.floor(h.length / 2) : 0;
        if (n > 4000) n = 4000;
        const s = this.stage(8 + n);
        for (let i = 0; i < n; i++) s.setUint8(8 + i, parseInt(h!.slice(2 * i, 2 * i + 2), 16) & 0xff);
        const r = this.feature(s, 0, n);
        if (!r) return segv();
        let d = "";
        for (let i = 0; i < n; i++) d += s.getUint8(8 + i).toString(16).padStart(2, "0");
        return res(r) + ` data=${n ? d : "-"}`;
      }
      case "migration": {
        const s = this.stage(16);
        const r = this.feature(s, VFIO_DEVICE_FEATURE_GET | VFIO_DEVICE_FEATURE_MIGRATION, 8);
        if (!r) return segv();
        return res(r) + (r.ret === 0 ? ` flags=${hex(s.getBigUint64(8, true))}` : "");
      }
      case "mig_get": {
        const s = this.stage(16);
        const r = this.feature(s, VFIO_DEVICE_FEATURE_GET | VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE, 8);
        if (!r) return segv();
        return res(r) + (r.ret === 0 ? ` state=${s.getUint32(8, true)}` : "");
      }
      case "mig_set": {
        const s = this.stage(16);
        s.setUint32(8, Number(this.num("state", 0n) & 0xffff_ffffn), true);
        s.setInt32(12, Number(BigInt.asIntN(32, this.num("data_fd", 0xffff_ffff_ffff_ffffn))), true);
        const r = this.feature(s, VFIO_DEVICE_FEATURE_SET | VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE, 8);
        if (!r) return segv();
        const fd = s.getInt32(12, true);
        let o = res(r) + ` state=${s.getUint32(8, true)}`;
        if (r.ret === 0 && fd >= 0) {
          o += " data_fd=new";
          if (this.dataFds.length < 256) this.dataFds.push(fd);
          this.keep("data", BigInt(fd));
        } else o += ` data_fd=${fd}`;
        return o;
      }
      case "data_size": {
        const s = this.stage(16);
        const r = this.feature(s, VFIO_DEVICE_FEATURE_GET | VFIO_DEVICE_FEATURE_MIG_DATA_SIZE, 8);
        if (!r) return segv();
        return res(r) + (r.ret === 0 ? ` stop_copy_length=${s.getBigUint64(8, true)}` : "");
      }
      case "log_start": {
        const s = this.stage(8 + 24);
        const ranges = parseLogRanges(sval(this.toks, "ranges"));
        const rb = new Uint8Array(256 * 16);
        const rv = new DataView(rb.buffer);
        ranges.forEach(([iova, len], i) => {
          rv.setBigUint64(i * 16, iova, true);
          rv.setBigUint64(i * 16 + 8, len, true);
        });
        p.write(RBUF, rb);
        s.setBigUint64(8, this.num("page_size", 4096n), true);
        s.setUint32(16, Number(this.num("num", BigInt(ranges.length)) & 0xffff_ffffn), true);
        s.setBigUint64(24, this.has("data") ? this.num("data", 0n) : RBUF, true);
        const r = this.feature(s, VFIO_DEVICE_FEATURE_SET | VFIO_DEVICE_FEATURE_DMA_LOGGING_START, 24);
        if (!r) return segv();
        return res(r) + (r.ret === 0 ? ` page_size=${hex(s.getBigUint64(8, true))}` : "");
      }
      case "log_stop": {
        const s = this.stage(8);
        const r = this.feature(s, VFIO_DEVICE_FEATURE_SET | VFIO_DEVICE_FEATURE_DMA_LOGGING_STOP, 0);
        return r ? res(r) : segv();
      }
      case "log_report": {
        const s = this.stage(8 + 32);
        const length = this.num("length", 0n);
        const pageSize = this.num("page_size", 4096n);
        s.setBigUint64(8, this.num("iova", 0n), true);
        s.setBigUint64(16, length, true);
        s.setBigUint64(24, pageSize, true);
        s.setBigUint64(32, this.num("data", 0n), true);
        const nbits = pageSize ? length / pageSize : 0n;
        const show = this.num("show", (nbits + 7n) / 8n);
        const r = this.feature(s, VFIO_DEVICE_FEATURE_GET | VFIO_DEVICE_FEATURE_DMA_LOGGING_REPORT, 32);
        if (!r) return segv();
        return res(r) + (this.has("data") ? ` bitmap=${formatUserBuffer(p, this.num("data", 0n), show)}` : "");
      }
      case "precopy": {
        const s = this.stage(24);
        const r = this.call(this.fdArg(), VFIO_MIG_GET_PRECOPY_INFO, s, 24);
        if (!r) return segv();
        return res(r) + (r.ret === 0 ? ` initial=${s.getBigUint64(8, true)} dirty=${s.getBigUint64(16, true)}` : "");
      }
      case "data_read": {
        const b = this.has("buf") ? this.num("buf", 0n) : RDBUF;
        const r = p.readFd(this.fdArg(), b, Number(this.num("count", 4096n)));
        return res(r) + (r.ret > 0 ? ` data=${formatUserBuffer(p, b, BigInt(r.ret))}` : "");
      }
      case "data_write":
        return res(p.writeFd(this.fdArg(), this.num("buf", 0n), Number(this.num("count", 0n))));
      case "data_close": {
        const fd = this.fdArg();
        const r = p.close(fd);
        if (r.ret === 0) {
          const i = this.dataFds.indexOf(fd);
          if (i >= 0) this.dataFds.splice(i, 1);
        }
        return res(r);
      }
      case "reset":
        return res(p.ioctl(this.cdev, VFIO_DEVICE_RESET, 0n));
      case "dev_ioctl":
        return res(p.ioctl(this.cdev, Number(this.num("cmd", 0n) & 0xffff_ffffn), this.num("arg", 0n)));
      default:
        return null;
    }
  }
}

/** `IOVA:LENGTH,...` as the runner's log_start reads it (strtoull; at most 256; a missing length is 0). */
function parseLogRanges(v: string | null): [bigint, bigint][] {
  const out: [bigint, bigint][] = [];
  const numRe = /^\s*[+-]?(0[xX][0-9a-fA-F]+|0[0-7]*|[1-9][0-9]*)?/;
  const val = (m: RegExpExecArray): bigint => {
    if (!m[1]) return 0n;
    const x = numOf(["", `v=${m[1]}`], "v", 0n, 0n);
    return m[0].trimStart().startsWith("-") ? BigInt.asUintN(64, -x) : x;
  };
  let rest = v;
  while (rest && rest.length && out.length < 256) {
    const m = numRe.exec(rest)!;
    const a = val(m);
    let e = rest.slice(m[0].length);
    let len = 0n;
    if (e[0] === ":") {
      const m2 = numRe.exec(e.slice(1))!;
      len = val(m2);
      e = e.slice(1 + m2[0].length);
    }
    out.push([a, len]);
    rest = e[0] === "," ? e.slice(1) : null;
  }
  return out;
}
