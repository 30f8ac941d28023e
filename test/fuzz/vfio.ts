/**
 * Fuzz target `vfio`: the VFIO device fd of an mtty-like device (profile linux-6.12 or
 * linux-6.1) in a simulated process: raw VFIO_DEVICE_FEATURE calls (any feature number and
 * op bits, edge argsz, the struct on good, read-only or unmapped memory, payload pointers to
 * anywhere), typed state changes, GET_INFO, RESET, read/write/PRECOPY_INFO/close on data fds
 * (and on numbers that are not), and closing/re-opening the device fd.
 *
 * After each call: a failed call left the device as it was (state, ports, both migration
 * files) - except the partial effects Linux has: a resuming write whose header fails
 * validation (EFAULT) still stores and counts its bytes, and a SET whose arcs succeeded but
 * whose answer could not be copied out (EFAULT) keeps the new state (the file is dropped).
 * Always: GET agrees with the device, a disabled file is empty at position 0, the stream
 * never exceeds mtty_data_size(), and no exception escapes.
 */
import { Rng } from "../../src/util/random";
import { Process, PROT_READ, PROT_WRITE } from "../../src/process";
import { errnoName, Errno } from "../../src/uapi/errno";
import { VFIO_DEVICE_FEATURE, VFIO_DEVICE_GET_INFO, VFIO_DEVICE_RESET, VFIO_MIG_GET_PRECOPY_INFO } from "../../src/uapi/vfio";
import { MttyDevice, MttyMigrationFile } from "../../src/vfio/mtty";
import { VfioCoreDevice } from "../../src/vfio/vfio-main";
import { VFIO_CORE_LINUX_6_1, VFIO_CORE_LINUX_6_12 } from "../../src/vfio/profile";
import { installVfioDevice } from "../../src/vfio/device";
import type { Finding, Op, Session, Target } from "./engine";
import { firstDiff } from "./diff";
import { EDGES, anyU64, argsz, pick, weighted } from "./values";

const PATH = "/dev/vfio/devices/vfio0";
const SCRATCH = 0x1000_0000n;
const RO = 0x2000_0000n;
const UNMAPPED = 0x3000_0000n;

/** The world of one episode. */
export interface VfioConfig {
  profile: "linux-6.1" | "linux-6.12";
}

/** What a failed call must leave as it was. */
function fileSnap(f: MttyMigrationFile | null) {
  return f ? { mode: f.mode, filled: f.filledSize, pos: f.pos, disabled: f.disabled, data: Array.from(f.data) } : null;
}

class VfioSession implements Session {
  readonly proc = new Process();
  readonly mtty: MttyDevice;
  dev = -1;
  /** Data fds the process got (some may be closed by now). */
  dataFds: number[] = [];

  constructor(readonly cfg: VfioConfig) {
    const profile = cfg.profile === "linux-6.1" ? VFIO_CORE_LINUX_6_1 : VFIO_CORE_LINUX_6_12;
    this.mtty = new MttyDevice({ profile });
    installVfioDevice(this.proc, PATH, new VfioCoreDevice(this.mtty, profile));
    this.proc.mmap(SCRATCH, 0x10000, PROT_READ | PROT_WRITE);
    this.proc.mmap(RO, 0x1000, PROT_READ);
    this.dev = this.proc.open(PATH).ret;
  }

  private snap() {
    const m = this.mtty as unknown as { savingMigf: MttyMigrationFile | null; resumingMigf: MttyMigrationFile | null };
    return { state: this.mtty.state, ports: Array.from(this.mtty.ports), saving: fileSnap(m.savingMigf), resuming: fileSnap(m.resumingMigf) };
  }

  private where(w: unknown): bigint {
    return w === "ro" ? RO : w === "unmapped" ? UNMAPPED : w === "edge" ? SCRATCH + 0x10000n - 12n : SCRATCH;
  }

  step(op: Op): Finding[] {
    const before = this.snap();
    const out: Finding[] = [];
    const r = this.exec(op);
    const now = this.snap();
    if (r < 0) {
      const resumingHeader = op.k === "write" && r === -Errno.EFAULT && before.resuming && now.resuming && now.resuming.filled > before.resuming.filled;
      const setCopyFailed = op.k === "feature" && r === -Errno.EFAULT && ((op.flags as number) & 0xffff) === 2;
      if (!resumingHeader && !setCopyFailed) {
        const d = firstDiff(before, now);
        if (d) out.push({ kind: "state", op: op.k, message: `failed ${op.k} (${errnoName(-r)}) changed the device: ${d}` });
      }
    }
    for (const f of [now.saving, now.resuming]) {
      if (f && f.disabled && (f.filled !== 0 || f.pos !== 0)) out.push({ kind: "invariant", op: op.k, message: `a disabled file holds ${f.filled} bytes at ${f.pos}` });
      if (f && f.filled > this.mtty.dataSize()) out.push({ kind: "invariant", op: op.k, message: `stream of ${f.filled} bytes > mtty_data_size ${this.mtty.dataSize()}` });
    }
    if (this.mtty.oops) out.push({ kind: "post", op: op.k, message: `oops: ${this.mtty.oops}` });
    return out;
  }

  private exec(op: Op): number {
    const p = this.proc;
    switch (op.k) {
      case "feature": {
        const at = this.where(op.where);
        const b = new Uint8Array(8 + 40);
        const dv = new DataView(b.buffer);
        dv.setUint32(0, op.argsz as number, true);
        dv.setUint32(4, op.flags as number, true);
        (op.payload as bigint[]).forEach((v, i) => dv.setBigUint64(8 + i * 8, v, true));
        if (at === SCRATCH || at === SCRATCH + 0x10000n - 12n) p.write(at, b.subarray(0, Number(SCRATCH + 0x10000n - at < 48n ? SCRATCH + 0x10000n - at : 48n)));
        const r = p.ioctl(this.dev, VFIO_DEVICE_FEATURE, at);
        // A data fd the kernel installed: remember it.
        if (r.ret === 0 && ((op.flags as number) & 0x2ffff) === 0x20002 && !((op.flags as number) & 0x40000)) {
          const fd = new DataView((p.read(at + 12n, 4) ?? new Uint8Array(4)).buffer).getInt32(0, true);
          if (fd >= 0) this.dataFds.push(fd);
        }
        return r.ret < 0 ? -r.errno : r.ret;
      }
      case "info": {
        const b = new Uint8Array(24);
        new DataView(b.buffer).setUint32(0, op.argsz as number, true);
        const at = this.where(op.where);
        if (at === SCRATCH) p.write(at, b);
        const r = p.ioctl(this.dev, VFIO_DEVICE_GET_INFO, at);
        return r.ret < 0 ? -r.errno : r.ret;
      }
      case "reset": {
        const r = p.ioctl(this.dev, VFIO_DEVICE_RESET, 0n);
        return r.ret < 0 ? -r.errno : 0;
      }
      case "read": {
        const r = p.readFd(this.fd(op), this.where(op.where), op.count as number);
        return r.ret < 0 ? -r.errno : r.ret;
      }
      case "write": {
        const r = p.writeFd(this.fd(op), this.where(op.where) + BigInt(op.off as number), op.count as number);
        return r.ret < 0 ? -r.errno : r.ret;
      }
      case "precopy": {
        const b = new Uint8Array(24);
        new DataView(b.buffer).setUint32(0, op.argsz as number, true);
        const at = this.where(op.where);
        if (at === SCRATCH) p.write(at, b);
        const r = p.ioctl(this.fd(op), VFIO_MIG_GET_PRECOPY_INFO, at);
        return r.ret < 0 ? -r.errno : r.ret;
      }
      case "close": {
        const fd = this.fd(op);
        if (fd === this.dev) return 0; // the device fd goes through "reopen"
        const r = p.close(fd);
        return r.ret < 0 ? -r.errno : 0;
      }
      case "reopen": {
        p.close(this.dev);
        this.dev = p.open(PATH).ret;
        return 0;
      }
      default:
        throw new Error(`unknown op ${op.k}`);
    }
  }

  private fd(op: Op): number {
    const i = op.fd as number;
    return i < 0 ? -i : this.dataFds.length ? this.dataFds[i % this.dataFds.length] : 99;
  }

  dispose(): void {
    this.proc.exit();
  }
}

function gen(rng: Rng, s: Session): Op {
  const w = s as VfioSession;
  const where = (): string => weighted(rng, [[12, () => "ok"], [1, () => "ro"], [1, () => "unmapped"], [1, () => "edge"]]);
  const fdIdx = (): number => (rng.chance(0.9) ? rng.int(8) : -pick(rng, [0, 1, 2, 3, 99, 1 << 20]));
  return weighted<Op>(rng, [
    [10, () => {
      // MIG_DEVICE_STATE SET to a state, mostly valid; sometimes any feature/op bits.
      const feature = rng.chance(0.7) ? 2 : pick(rng, [0, 1, 2, 3, 6, 7, 8, 9, 10, 0xffff]);
      const opBits = rng.chance(0.8) ? (feature === 2 ? pick(rng, [0x20000, 0x20000, 0x10000]) : pick(rng, [0x10000, 0x20000])) : pick(rng, [0, 0x30000, 0x40000, 0x50000, 0x60000, 0x70000, 0x80000]);
      const payload = [BigInt(rng.chance(0.9) ? 1 + rng.int(7) : pick(rng, [0, 8, 0xffffffff])) | (0xffffffffn << 32n), 0n, 0n, 0n, 0n];
      if (feature === 6) {
        payload[0] = pick(rng, [0n, 4096n, 4096n, 0x200000n, 3n, 0x800n]);
        payload[1] = BigInt(pick(rng, [0, 1, 2, 256, 257]));
        payload[2] = pick(rng, [SCRATCH + 0x100n, SCRATCH + 0x100n, UNMAPPED, RO, 0n]);
      } else if (feature === 8) {
        payload[0] = pick(rng, [0n, 0x1000n, ...EDGES]);
        payload[1] = pick(rng, [0n, 0x10000n, 0x100000n, ...EDGES]);
        payload[2] = pick(rng, [4096n, 0x800n, 0x3000n, 0x200000n, 0n, 1n << 40n]);
        payload[3] = pick(rng, [SCRATCH + 0x2000n, RO, UNMAPPED, 0n, anyU64(rng)]);
      }
      return { k: "feature", flags: (opBits | feature) >>> 0, argsz: argsz(rng, 8 + pick(rng, [8, 8, 24, 32, 0])), where: where(), payload };
    }],
    [2, () => ({ k: "info", argsz: argsz(rng, 24), where: where() })],
    [1, () => ({ k: "reset" })],
    [6, () => ({ k: "read", fd: fdIdx(), count: pick(rng, [0, 1, 8, 24, 40, 96, 4096, 0x7fffffff]), where: where() })],
    [5, () => ({ k: "write", fd: fdIdx(), count: pick(rng, [0, 1, 8, 24, 48, 72, 96, 97]), off: pick(rng, [0, 0, 1, 24]), where: where() })],
    [3, () => ({ k: "precopy", fd: fdIdx(), argsz: argsz(rng, 24), where: where() })],
    [2, () => ({ k: "close", fd: fdIdx() })],
    // Closing the device in RESUMING sets up the mtty sample's NULL dereference; the model
    // reproduces it (mtty-oops.trace), so the fuzzer stays clear of it.
    [1, () => (w.mtty.state === 4 ? { k: "reset" } : { k: "reopen" })],
  ]);
}

export const vfioTarget: Target<VfioConfig> = {
  name: "vfio",
  config: (rng) => ({ profile: rng.chance(0.7) ? "linux-6.12" : "linux-6.1" }),
  open: (cfg) => new VfioSession(cfg),
  gen,
};
