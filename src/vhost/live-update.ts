/**
 * The vdpa live-update flow of the 2024 RFC (seed 004) on simulated processes: a VMM
 * process backs guest RAM with a memfd mapped MAP_SHARED and maps it into a vhost-vdpa
 * device's IOTLB; a new VMM process receives the memfd and the device fd (SCM_RIGHTS),
 * maps the memfd at other addresses, takes the device with VHOST_NEW_OWNER and REMAPs
 * every entry to its addresses inside one batch; the old process exits. Meanwhile a
 * device keeps writing into guest RAM through its IOTLB.
 *
 * `LiveDevice` is the device side: seeded DMA writes, held (not issued) while the VMM has
 * it suspended and retried in order after a fault, and a ledger kept apart from every
 * translation: where each byte must land in guest RAM (the memfd), computed from the
 * guest layout alone. `LiveDevice.check` compares it with the memfd and reports lost and
 * stray bytes. VHOST_NEW_OWNER and VHOST_IOTLB_REMAP are not in Linux: the device is
 * created with both RFC options on.
 */
import { MAP_SHARED, PROT_READ, PROT_WRITE, Process, SyscallResult } from "../process";
import { MemfdFile } from "../process/shmem";
import { WasmCore, type CoreInput } from "../wasm/core";
import { errnoName } from "../uapi/errno";
import {
  VHOST_IOTLB_MSG_V2,
  VHOST_NEW_OWNER,
  VHOST_SET_BACKEND_FEATURES,
  VHOST_SET_OWNER,
  VhostAccess,
  VhostBackendFeature as F,
  VhostIotlbType,
  backendFeatureMask as bit,
  encodeVhostMsgV2,
} from "../uapi/vhost";
import { Rng } from "../util/random";
import { VhostVdpa, vhostVdpaOpener } from "./vdpa";

/** One region of guest RAM: `size` bytes at `iova`, backed by the memfd at `offset`. */
export interface GuestRegion {
  readonly iova: bigint;
  readonly offset: number;
  readonly size: number;
  /** VhostAccess.RO / WO / RW. */
  readonly perm: number;
}

/** A small VM's RAM layout: below 1 MiB, two RAM blocks, a read-only ROM, a write-only ring. */
export const DEFAULT_LAYOUT: readonly GuestRegion[] = [
  { iova: 0x0n, offset: 0x0, size: 0x80000, perm: VhostAccess.RW },
  { iova: 0x100000n, offset: 0x80000, size: 0x40000, perm: VhostAccess.RW },
  { iova: 0x200000n, offset: 0xc0000, size: 0x20000, perm: VhostAccess.RO },
  { iova: 0x40000000n, offset: 0xe0000, size: 0x20000, perm: VhostAccess.WO },
];

/** Guest RAM size of DEFAULT_LAYOUT (the memfd's size). */
export const DEFAULT_RAM_SIZE = 0x100000;

const DEV = "/dev/vhost-vdpa-0";
const RW = PROT_READ | PROT_WRITE;
const MSG_LEN = 72;

/** A VMM process of the flow: its fds and where it mapped guest RAM. */
export interface Vmm {
  readonly p: Process;
  /** The vhost-vdpa device's fd. */
  readonly devFd: number;
  /** The memfd's fd. */
  readonly memFd: number;
  /** Where guest RAM (memfd offset 0) is mapped; the mapping may be shorter than RAM. */
  readonly base: bigint;
  /** Bytes of guest RAM mapped from `base`. */
  mapped: number;
  /** A page of anonymous memory where messages are staged for write(2). */
  readonly scratch: bigint;
}

/** The outcome of one step: ok, or the errno the syscall returned. */
export type StepResult = { ok: true } | { ok: false; errno: number; name: string };

const res = (r: SyscallResult): StepResult => (r.errno === 0 ? { ok: true } : { ok: false, errno: r.errno, name: errnoName(r.errno) });

/** Options of a flow. */
export interface LiveUpdateOptions {
  layout?: readonly GuestRegion[];
  ramSize?: number;
  /** Where the old VMM maps guest RAM (default 0x7f0000000000). */
  oldBase?: bigint;
  /** Where the new VMM maps it (default 0x7e8000000000). */
  newBase?: bigint;
  /** The Wasm core of the machine, or the compiled module to instantiate (default: the default module). */
  core?: CoreInput;
}

/** Both VMMs, the device and the memfd on one simulated machine (one Wasm core). */
export class LiveUpdateWorld {
  readonly core: WasmCore;
  readonly dev = new VhostVdpa({ newOwner: true, remap: true });
  readonly layout: readonly GuestRegion[];
  readonly ramSize: number;
  readonly old: Vmm;
  /** The new VMM once `spawnNew` ran. */
  next: Vmm | null = null;
  private readonly newBase: bigint;
  private readonly ramFile: MemfdFile;

  /**
   * The old VMM: creates the memfd, maps it MAP_SHARED, opens the device, SET_OWNER,
   * acks MSG_V2, BATCH and the two RFC features, and maps every region in one batch.
   */
  constructor(opts: LiveUpdateOptions = {}) {
    this.core = WasmCore.from(opts.core);
    this.layout = opts.layout ?? DEFAULT_LAYOUT;
    this.ramSize = opts.ramSize ?? DEFAULT_RAM_SIZE;
    this.newBase = opts.newBase ?? 0x7e80_0000_0000n;
    const p = new Process({ core: this.core });
    p.registerDevice(DEV, vhostVdpaOpener(this.dev));
    const memFd = must(p.memfdCreate("guest-ram"));
    must(p.ftruncate(memFd, this.ramSize));
    const base = BigInt(must(p.mmapFd(opts.oldBase ?? 0x7f00_0000_0000n, this.ramSize, RW, MAP_SHARED, memFd, 0)));
    const scratch = BigInt(must(p.mmap(undefined, 4096)));
    const devFd = must(p.open(DEV));
    this.old = { p, devFd, memFd, base, mapped: this.ramSize, scratch };
    this.ramFile = p.memfd(memFd)!;
    must(p.ioctl(devFd, VHOST_SET_OWNER));
    const feats = new Uint8Array(8);
    new DataView(feats.buffer).setBigUint64(0, bit(F.IOTLB_MSG_V2) | bit(F.IOTLB_BATCH) | bit(F.NEW_OWNER) | bit(F.IOTLB_REMAP), true);
    must(p.write(scratch + 0x100n, feats));
    must(p.ioctl(devFd, VHOST_SET_BACKEND_FEATURES, scratch + 0x100n));
    this.mustStep(this.batchBegin(this.old));
    for (const r of this.layout) this.mustStep(this.send(this.old, VhostIotlbType.UPDATE, r.iova, BigInt(r.size), base + BigInt(r.offset), r.perm));
    this.mustStep(this.batchEnd(this.old));
  }

  private mustStep(r: StepResult): void {
    if (!r.ok) throw new Error(`live-update set-up failed: ${r.name}`);
  }

  /**
   * The new VMM: a second process that receives the memfd and the device fd from the old
   * one (SCM_RIGHTS) and maps the first `mapLength` bytes of guest RAM (default all) at
   * its own base.
   */
  spawnNew(mapLength = this.ramSize): Vmm {
    const p = new Process({ core: this.core });
    const memFd = must(this.old.p.sendFd(this.old.memFd, p));
    const devFd = must(this.old.p.sendFd(this.old.devFd, p));
    const base = BigInt(must(p.mmapFd(this.newBase, mapLength, RW, MAP_SHARED, memFd, 0)));
    const scratch = BigInt(must(p.mmap(undefined, 4096)));
    this.next = { p, devFd, memFd, base, mapped: mapLength, scratch };
    return this.next;
  }

  /** The new VMM maps the rest of guest RAM right after what it mapped (MAP_FIXED_NOREPLACE). */
  mapRest(v: Vmm): StepResult {
    if (v.mapped >= this.ramSize) return { ok: true };
    const r = v.p.mmapFd(v.base + BigInt(v.mapped), this.ramSize - v.mapped, RW, MAP_SHARED, v.memFd, v.mapped);
    if (r.errno === 0) v.mapped = this.ramSize;
    return res(r);
  }

  /** write(2) of one IOTLB message from `v`'s memory. */
  send(v: Vmm, type: number, iova: bigint, size: bigint, uaddr: bigint, perm: number): StepResult {
    const msg = encodeVhostMsgV2({ type: VHOST_IOTLB_MSG_V2, asid: 0, iotlb: { iova, size, uaddr, perm, type } });
    const staged = v.p.write(v.scratch, msg);
    if (staged.errno !== 0) return res(staged);
    return res(v.p.writeFd(v.devFd, v.scratch, MSG_LEN));
  }

  /** VHOST_NEW_OWNER from `v`. */
  newOwner(v: Vmm): StepResult {
    return res(v.p.ioctl(v.devFd, VHOST_NEW_OWNER));
  }

  batchBegin(v: Vmm): StepResult {
    return this.send(v, VhostIotlbType.BATCH_BEGIN, 0n, 0n, 0n, 0);
  }

  batchEnd(v: Vmm): StepResult {
    return this.send(v, VhostIotlbType.BATCH_END, 0n, 0n, 0n, 0);
  }

  /** VHOST_IOTLB_REMAP of `region` to where `v` maps its memfd offset (or to `uaddr`). */
  remap(v: Vmm, region: GuestRegion, uaddr = v.base + BigInt(region.offset), size = BigInt(region.size)): StepResult {
    return this.send(v, VhostIotlbType.REMAP, region.iova, size, uaddr, 0);
  }

  /** The old VMM exits: its fds close (the device stays open: the new VMM holds it) and its mm goes. */
  exitOld(): void {
    this.old.p.exit();
  }

  /** The memfd (the guest RAM itself; model introspection, whoever holds it). */
  get ram(): MemfdFile {
    return this.ramFile;
  }

  /** Per region: the IOTLB's uaddr and the parent's (what device DMA uses), or null when absent. */
  translations(): { region: GuestRegion; iotlb: bigint | null; device: bigint | null }[] {
    return this.layout.map((region) => ({
      region,
      iotlb: this.dev.iotlb(0)?.first(region.iova, region.iova)?.addr ?? null,
      device: this.dev.parentLookup(region.iova)?.addr ?? null,
    }));
  }
}

function must(r: SyscallResult): number {
  if (r.errno !== 0) throw new Error(`live-update set-up failed: ${errnoName(r.errno)}`);
  return r.ret;
}

/** One device write: `data` at `iova`, which the layout says is memfd offset `offset`. */
export interface DeviceWrite {
  readonly seq: number;
  readonly iova: bigint;
  readonly offset: number;
  readonly data: Uint8Array;
}

/** What `LiveDevice.check` found. */
export interface LedgerCheck {
  /** Bytes the device wrote (last write wins) that are not in guest RAM where they belong. */
  lost: number;
  /** Bytes of guest RAM that changed although the device never wrote there. */
  stray: number;
  /** Writes still held (suspended or faulting). */
  pending: number;
}

/**
 * The device: writes random non-zero bytes into the writable regions of guest RAM through
 * the vhost-vdpa device's DMA. Writes are issued in order; while the device is suspended,
 * or after a write faulted, they are held and retried in order.
 */
export class LiveDevice {
  /** Every write issued, by `seq`. */
  readonly issued: DeviceWrite[] = [];
  /** Writes not yet done, oldest first. */
  readonly pending: DeviceWrite[] = [];
  /** IOVAs of the DMA faults seen (a write faults, is held, and is retried later). */
  readonly faults: bigint[] = [];
  /** Writes that reached the IOTLB and were done. */
  done = 0;
  suspended = false;
  private readonly rng: Rng;
  /** The ledger: where each byte must end up (memfd offset → byte), from the layout alone. */
  private readonly ledger = new Map<number, number>();
  private readonly writable: readonly GuestRegion[];

  constructor(
    private readonly world: LiveUpdateWorld,
    seed = 1,
    /** Largest write in bytes. */
    private readonly maxLen = 256,
  ) {
    this.rng = new Rng(seed);
    this.writable = world.layout.filter((r) => (r.perm & VhostAccess.WO) !== 0);
  }

  /** Issues `n` new writes (each is held if the device is suspended or behind a held write). */
  tick(n = 8): void {
    for (let i = 0; i < n; i++) {
      const r = this.writable[this.rng.int(this.writable.length)];
      const len = this.rng.range(1, Math.min(this.maxLen, r.size));
      const at = this.rng.int(r.size - len + 1);
      const data = new Uint8Array(len);
      for (let j = 0; j < len; j++) data[j] = this.rng.range(1, 255);
      const w: DeviceWrite = { seq: this.issued.length, iova: r.iova + BigInt(at), offset: r.offset + at, data };
      this.issued.push(w);
      for (let j = 0; j < len; j++) this.ledger.set(w.offset + j, data[j]);
      this.pending.push(w);
    }
    this.flush();
  }

  /** Retries the held writes in order, stopping at the first fault. */
  flush(): void {
    while (!this.suspended && this.pending.length > 0) {
      const w = this.pending[0];
      const r = this.world.dev.dmaWrite(w.iova, w.data);
      if (!r.ok) {
        this.faults.push(r.faultIova);
        return;
      }
      this.pending.shift();
      this.done++;
    }
  }

  /** VHOST_VDPA_SUSPEND as far as the device goes: it stops issuing DMA (the ioctl is not modelled). */
  suspend(): void {
    this.suspended = true;
  }

  /** VHOST_VDPA_RESUME: issues what it held. */
  resume(): void {
    this.suspended = false;
    this.flush();
  }

  /**
   * Compares guest RAM with the ledger. Only writes that were done count as owed: a held
   * write's bytes are neither lost nor stray until it is done.
   */
  check(): LedgerCheck {
    const ram = this.world.ram.readAt(0, this.world.ramSize);
    const owed = new Map<number, number>();
    const held = new Set<number>();
    for (const w of this.pending) for (let j = 0; j < w.data.length; j++) held.add(w.offset + j);
    for (const w of this.issued) {
      if (this.pending.includes(w)) continue;
      for (let j = 0; j < w.data.length; j++) owed.set(w.offset + j, w.data[j]);
    }
    let lost = 0;
    let stray = 0;
    for (const [off, b] of owed) if (ram[off] !== b && !held.has(off)) lost++;
    for (let off = 0; off < ram.length; off++) if (ram[off] !== 0 && !owed.has(off) && !held.has(off)) stray++;
    return { lost, stray, pending: this.pending.length };
  }

  /** Bytes the device has written so far (ledger size). */
  get ledgerBytes(): number {
    return this.ledger.size;
  }
}
