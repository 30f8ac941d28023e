/**
 * Fuzz target `vhost`: a vhost-vdpa device (1-3 address spaces, the 2024 live-update RFC
 * on or off, a restricted IOVA range or not) driven by two tasks with shared-file and
 * anonymous memory (test/vhost/fake-mm.ts): SET_OWNER, NEW_OWNER, backend features,
 * the read-only ioctls, unknown ioctls, and IOTLB messages written from good, unmapped
 * and straddling buffers with any count (V1/V2 headers, UPDATE, INVALIDATE, BATCH_BEGIN/END,
 * REMAP, unknown types), plus close/reopen and device DMA.
 *
 * After each call: every IOTLB tree is a valid augmented AVL tree with disjoint entries;
 * a failed call left the trees, owner, batch state and features as they were (a failing
 * UPDATE/BATCH_BEGIN may leave the new empty address space, as Linux does); outside a
 * batch the parent's copy equals the tree (unless a non-batched REMAP is pending, which
 * the RFC updates only at the next set_map); device DMA through an entry reaches the
 * entry's user address.
 */
import { Rng } from "../../src/util/random";
import { VhostVdpa } from "../../src/vhost/vdpa";
import {
  VHOST_GET_BACKEND_FEATURES,
  VHOST_IOTLB_MSG,
  VHOST_IOTLB_MSG_V2,
  VHOST_NEW_OWNER,
  VHOST_SET_BACKEND_FEATURES,
  VHOST_SET_OWNER,
  VHOST_VDPA_GET_AS_NUM,
  VHOST_VDPA_GET_IOVA_RANGE,
  VhostBackendFeature as F,
  backendFeatureMask as bit,
} from "../../src/uapi/vhost";
import { errnoName } from "../../src/uapi/errno";
import { FakeMm, Memfd } from "../vhost/fake-mm";
import type { Finding, Op, Session, Target } from "./engine";
import { firstDiff } from "./diff";
import { vhostMayCreateAs, vhostUpdateUnwindRange } from "./partial-effects";
import { EDGES, U64, anyU64, pick, weighted } from "./values";

const GUEST = 0x7f00_0000_0000n;
const GUEST_SIZE = 1 << 20;
const ANON = 0x6000_0000_0000n;
const SCRATCH = 0x1000n;
const UNMAPPED = 0x5000_0000_0000n;
const hex = (v: bigint): string => `0x${v.toString(16)}`;

/** The world of one episode. */
export interface VhostConfig {
  nas: number;
  remap: boolean;
  newOwner: boolean;
  /** The parent's get_iova_range, or null for [0, U64_MAX]. */
  range: { first: string; last: string } | null;
}

interface Entry {
  start: bigint;
  last: bigint;
  addr: bigint;
  perm: number;
}

/** A live vhost-vdpa world. */
export class VhostSession implements Session {
  readonly dev: VhostVdpa;
  readonly tasks: FakeMm[] = [];
  readonly memfd = new Memfd(GUEST_SIZE);
  /** Per asid: a non-batched REMAP changed the tree after its set_map (the RFC's order). */
  readonly staleRemap = new Set<number>();

  constructor(readonly cfg: VhostConfig) {
    this.dev = new VhostVdpa({
      nas: cfg.nas,
      remap: cfg.remap,
      newOwner: cfg.newOwner,
      iovaRange: cfg.range ? { first: BigInt(cfg.range.first), last: BigInt(cfg.range.last) } : undefined,
    });
    for (let i = 0; i < 2; i++) {
      const mm = new FakeMm();
      mm.mmap(GUEST + BigInt(i) * 0x1_0000_0000n, GUEST_SIZE, this.memfd);
      mm.mmap(ANON, 0x10000);
      mm.mmap(SCRATCH, 4096);
      this.tasks.push(mm);
    }
    this.dev.open();
  }

  dispose(): void {
    this.dev.release();
  }

  private trees(): Record<number, Entry[]> {
    const out: Record<number, Entry[]> = {};
    for (let a = 0; a < this.cfg.nas + 1; a++) {
      const t = this.dev.iotlb(a);
      if (t) out[a] = t.entries().map(({ start, last, addr, perm }) => ({ start, last, addr, perm }));
    }
    return out;
  }

  private snap(): unknown {
    return { trees: this.trees(), owner: this.tasks.indexOf(this.dev.ownerTask as FakeMm), batching: this.dev.batching, features: this.dev.backendFeatures };
  }

  /** The address space a message goes to: its asid field only with a V2 header and IOTLB_ASID acked. */
  asidOf(op: Op): number {
    return op.hdr === VHOST_IOTLB_MSG_V2 && (this.dev.backendFeatures & bit(F.IOTLB_ASID)) !== 0n ? (op.asid as number) : 0;
  }

  step(op: Op): Finding[] {
    const before = this.snap() as { trees: Record<number, Entry[]> };
    const asid = op.k === "msg" ? this.asidOf(op) : 0;
    const setMapsBefore = this.dev.setMapCalls.length;
    const out: Finding[] = [];
    const r = this.exec(op, out);
    if (r < 0) {
      const now = this.snap() as { trees: Record<number, Entry[]> };
      // A failing UPDATE/BATCH_BEGIN may have created its (empty) address space: Linux's order.
      if (op.k === "msg" && vhostMayCreateAs(op.type as number)) {
        for (const a of Object.keys(now.trees).map(Number)) if (!(a in before.trees) && now.trees[a].length === 0) delete now.trees[a];
      }
      if (op.k === "msg" && op.type === 2 && before.trees[asid]) {
        const [lo, hi] = vhostUpdateUnwindRange(op.iova as bigint);
        const keep = (e: Entry): boolean => !(e.start <= hi && e.last >= lo);
        before.trees[asid] = before.trees[asid].filter(keep);
        if (now.trees[asid]) now.trees[asid] = now.trees[asid].filter(keep);
      }
      const d = firstDiff(before, now);
      if (d) out.push({ kind: "state", op: op.k, message: `failed ${op.k} (${errnoName(-r)}) changed the state: ${d}` });
    }
    for (const call of this.dev.setMapCalls.slice(setMapsBefore)) this.staleRemap.delete(call.asid);
    if (op.k === "msg" && op.type === 7 && r >= 0 && !this.dev.batching) this.staleRemap.add(this.asidOf(op));
    for (let a = 0; a < this.cfg.nas + 1; a++) {
      const t = this.dev.iotlb(a);
      if (!t) continue;
      const bad = t.checkInvariants();
      if (bad) out.push({ kind: "invariant", op: op.k, message: `asid ${a}: ${bad}` });
      const es = t.entries();
      for (let i = 1; i < es.length; i++) if (es[i - 1].last >= es[i].start) out.push({ kind: "invariant", op: op.k, message: `asid ${a}: entries overlap at ${hex(es[i].start)}` });
      if (!this.dev.batching && !this.staleRemap.has(a) && this.dev.ownerTask) {
        const mine = es.map(({ start, last, addr, perm }) => ({ start, last, addr, perm }));
        const theirs = this.dev.parentEntries(a).map(({ start, last, addr, perm }) => ({ start, last, addr, perm }));
        const d = firstDiff(mine, theirs);
        if (d && this.dev.setMapCalls.length > 0) out.push({ kind: "post", op: op.k, message: `asid ${a}: outside a batch the parent's copy differs from the IOTLB: ${d}` });
      }
    }
    return out;
  }

  private exec(op: Op, out: Finding[]): number {
    const task = this.tasks[op.task as number] ?? this.tasks[0];
    switch (op.k) {
      case "ioctl": {
        let arg = op.arg as bigint;
        if (op.cmd === VHOST_SET_BACKEND_FEATURES && arg === SCRATCH) {
          const b = new Uint8Array(8);
          new DataView(b.buffer).setBigUint64(0, op.features as bigint, true);
          task.copyToUser(SCRATCH, b);
        }
        if (arg === -1n) arg = UNMAPPED;
        return this.dev.ioctl(task, op.cmd as number, arg);
      }
      case "msg": {
        const b = new Uint8Array(72);
        const dv = new DataView(b.buffer);
        dv.setUint32(0, op.hdr as number, true);
        dv.setUint32(4, op.asid as number, true);
        dv.setBigUint64(8, op.iova as bigint, true);
        dv.setBigUint64(16, op.size as bigint, true);
        dv.setBigUint64(24, op.uaddr as bigint, true);
        dv.setUint8(32, op.perm as number);
        dv.setUint8(33, op.type as number);
        let at = SCRATCH;
        if (op.where === "straddle") at = SCRATCH + 4096n - BigInt(op.cut as number);
        else if (op.where === "unmapped") at = UNMAPPED;
        task.copyToUser(at, b.subarray(0, Number(SCRATCH + 4096n - at < 72n ? SCRATCH + 4096n - at : 72n)));
        const r = this.dev.write(task, at, op.count as number);
        if (r >= 0 && r !== 72) out.push({ kind: "post", op: op.k, message: `write returned ${r}, not 72 or -errno` });
        return r;
      }
      case "close":
        this.dev.release();
        this.staleRemap.clear();
        return this.dev.open();
      case "dma": {
        const asid = op.asid as number;
        const iova = op.iova as bigint;
        const data = new Uint8Array(op.len as number).fill(op.byte as number);
        const e = this.dev.parentLookup(iova, asid);
        const w = this.dev.dmaWrite(iova, data, asid);
        if (w.ok && data.length > 0) {
          const back = this.dev.dmaRead(iova, data.length, asid);
          if (back.ok && back.value.some((x) => x !== (op.byte as number))) out.push({ kind: "post", op: op.k, message: `device wrote ${data.length} bytes at ${hex(iova)} (asid ${asid}) but reads back other bytes` });
          if (e && iova + BigInt(data.length) - 1n <= e.last && this.dev.ownerTask) {
            const ua = e.addr + (iova - e.start);
            const mem = (this.dev.ownerTask as FakeMm).copyFromUser(ua, data.length);
            if (mem && mem.some((x) => x !== (op.byte as number))) out.push({ kind: "post", op: op.k, message: `device write at ${hex(iova)} did not reach user address ${hex(ua)} of its entry` });
          }
        }
        return 0;
      }
      default:
        throw new Error(`fuzz vhost: unknown op ${op.k}`);
    }
  }
}

function someEntry(rng: Rng, s: VhostSession): { start: bigint; last: bigint; asid: number } | null {
  const all: Array<{ start: bigint; last: bigint; asid: number }> = [];
  for (let a = 0; a < s.cfg.nas; a++) for (const e of s.dev.iotlb(a)?.entries() ?? []) all.push({ start: e.start, last: e.last, asid: a });
  return all.length ? pick(rng, all) : null;
}

function genVhost(rng: Rng, s: VhostSession): Op {
  const e = someEntry(rng, s);
  const task = rng.chance(0.9) ? 0 : 1;
  const asid = weighted(rng, [[10, () => (e && rng.chance(0.5) ? e.asid : rng.int(s.cfg.nas))], [1, () => pick(rng, [s.cfg.nas, 0xffffffff])]]);
  const iova = weighted(rng, [
    [6, () => BigInt(rng.range(0, 255)) * 0x1000n],
    [4, () => (e ? pick(rng, [e.start, e.last, e.last + 1n, e.start - 1n, e.start + 0x800n]) & U64 : 0n)],
    [1, () => pick(rng, EDGES)],
    [1, () => anyU64(rng)],
  ]);
  const size = weighted(rng, [
    [8, () => BigInt(rng.range(1, 16)) * 0x1000n],
    [3, () => (e ? e.last - e.start + 1n : 0x1000n)],
    [1, () => BigInt(rng.range(1, 0x2000))],
    [1, () => pick(rng, EDGES)],
  ]);
  const uaddr = weighted(rng, [
    [8, () => GUEST + BigInt(rng.range(0, 255)) * 0x1000n],
    [2, () => GUEST + BigInt(GUEST_SIZE) - BigInt(rng.range(0, 8)) * 0x1000n],
    [1, () => ANON + BigInt(rng.range(0, 15)) * 0x1000n],
    [1, () => pick(rng, [0n, 1n, U64, 0x1_0000_0000n + GUEST, UNMAPPED])],
  ]);
  const type = weighted(rng, [[10, () => 2], [5, () => 3], [3, () => 5], [3, () => 6], [s.cfg.remap ? 3 : 0.5, () => 7], [1, () => pick(rng, [0, 1, 4, 8, 255])]]);
  const feat = weighted(rng, [
    [6, () => bit(F.IOTLB_MSG_V2) | bit(F.IOTLB_BATCH) | bit(F.IOTLB_ASID)],
    [2, () => bit(F.IOTLB_MSG_V2) | bit(F.IOTLB_BATCH)],
    [1, () => bit(F.IOTLB_MSG_V2) | bit(F.IOTLB_BATCH) | bit(F.IOTLB_ASID) | bit(F.IOTLB_REMAP) | bit(F.NEW_OWNER)],
    [1, () => anyU64(rng)],
  ]);
  return weighted<Op>(rng, [
    [40, () => ({
      k: "msg",
      task,
      hdr: weighted(rng, [[12, () => VHOST_IOTLB_MSG_V2], [2, () => VHOST_IOTLB_MSG], [1, () => pick(rng, [0, 3, 0xffffffff])]]),
      asid,
      type,
      iova,
      size: type === 7 && e && rng.chance(0.7) ? e.last - e.start + 1n : size,
      uaddr,
      perm: type === 7 ? (rng.chance(0.8) ? 0 : 3) : weighted(rng, [[10, () => pick(rng, [1, 2, 3])], [1, () => pick(rng, [0, 4, 255])]]),
      count: weighted(rng, [[14, () => 72], [1, () => pick(rng, [0, 3, 4, 7, 8, 39, 40, 71, 73, 4096])]]),
      where: weighted(rng, [[20, () => "ok"], [1, () => "unmapped"], [1, () => "straddle"]]),
      cut: rng.range(1, 71),
    })],
    [3, () => ({ k: "ioctl", task, cmd: VHOST_SET_OWNER, arg: 0n })],
    [s.cfg.newOwner ? 2 : 0.3, () => ({ k: "ioctl", task: 1 - task, cmd: VHOST_NEW_OWNER, arg: 0n })],
    [4, () => ({ k: "ioctl", task, cmd: VHOST_SET_BACKEND_FEATURES, arg: rng.chance(0.95) ? SCRATCH : -1n, features: feat })],
    [1, () => ({ k: "ioctl", task, cmd: pick(rng, [VHOST_GET_BACKEND_FEATURES, VHOST_VDPA_GET_IOVA_RANGE, VHOST_VDPA_GET_AS_NUM]), arg: rng.chance(0.8) ? SCRATCH : -1n })],
    [1, () => ({ k: "ioctl", task, cmd: pick(rng, [0xaf10, 0x4008af00, rng.u32()]), arg: rng.chance(0.8) ? SCRATCH : -1n })],
    [0.5, () => ({ k: "close" })],
    [6, () => ({ k: "dma", asid: e ? e.asid : 0, iova: e ? e.start + BigInt(rng.int(Number(e.last - e.start + 1n > 0x10000n ? 0x10000n : e.last - e.start + 1n))) : iova, len: rng.range(0, 64), byte: rng.range(1, 255) })],
  ]);
}

/** The vhost target. */
export const vhostTarget: Target<VhostConfig> = {
  name: "vhost",
  config: (rng) => ({
    nas: rng.range(1, 3),
    remap: rng.chance(0.6),
    newOwner: rng.chance(0.5),
    range: rng.chance(0.2) ? { first: "0x1000", last: "0xffffffff" } : null,
  }),
  open: (cfg) => {
    const s = new VhostSession(cfg);
    // Most episodes start owned, with the usual features acked.
    return s;
  },
  gen: (rng, s) => genVhost(rng, s as VhostSession),
};
