/**
 * The migration state machine against a reference built only from the uAPI text
 * (include/uapi/linux/vfio.h, "The FSM takes actions on the arcs between FSM states"):
 * its list of arcs, the rule that unsupported optional states behave as the state they
 * refine (RUNNING_P2P as RUNNING, PRE_COPY_P2P as PRE_COPY without P2P; arcs touching the
 * PRE_COPY states removed without PRE_COPY), and the rule for combination transitions:
 * the shortest path, with no saving-group state (PRE_COPY, PRE_COPY_P2P, STOP_COPY) inside
 * it - except inside one saving session ("Moving between these states ... does not
 * terminate or otherwise affect the associated fd"): a path from a saving state to a
 * saving state may stay in the group (PRE_COPY -> PRE_COPY_P2P -> STOP_COPY). Random SET sequences over every valid set of migration_flags, through the real
 * VFIO_DEVICE_FEATURE ioctl, check: success exactly when the reference finds a path, the
 * driver's arcs are uAPI arcs forming a shortest such path, and a data_fd comes back
 * exactly when the last arc is one the text says returns a new data_fd.
 */
import { Process } from "../../src/process";
import { Rng } from "../../src/util/random";
import { kernelFailure, type KernelResult } from "../../src/uapi/errno";
import { VFIO_MIGRATION_P2P, VFIO_MIGRATION_PRE_COPY, VFIO_MIGRATION_STOP_COPY } from "../../src/uapi/vfio";
import { MttyDevice, VfioCoreDevice, VfioDevice, installVfioDevice, vfioMigGetNextState, VFIO_CORE_LINUX_6_1 } from "../../src/vfio";
import type { VfioDeviceDriver, VfioMigrationFile, VfioMigrationOps } from "../../src/vfio";

const [ERROR, STOP, RUNNING, STOP_COPY, RESUMING, RUNNING_P2P, PRE_COPY, PRE_COPY_P2P] = [0, 1, 2, 3, 4, 5, 6, 7];
const N = ["ERROR", "STOP", "RUNNING", "STOP_COPY", "RESUMING", "RUNNING_P2P", "PRE_COPY", "PRE_COPY_P2P"];

/** The arcs the uAPI text lists, in its order ("any -> ERROR" is a failure, not an arc). */
const UAPI_ARCS: [number, number][] = [
  [RUNNING_P2P, STOP], [STOP_COPY, STOP], [RESUMING, STOP],
  [PRE_COPY, RUNNING], [RUNNING_P2P, RUNNING],
  [PRE_COPY_P2P, RUNNING_P2P], [RUNNING, RUNNING_P2P], [STOP, RUNNING_P2P],
  [RUNNING, PRE_COPY], [RUNNING_P2P, PRE_COPY_P2P], [STOP, STOP_COPY],
  [PRE_COPY, PRE_COPY_P2P], [PRE_COPY_P2P, PRE_COPY], [PRE_COPY_P2P, STOP_COPY],
  [STOP, RESUMING],
];
/** "These arcs begin the process of saving ... and will return a new data_fd", and STOP -> RESUMING. */
const NEW_FD_ARCS = new Set(["RUNNING>PRE_COPY", "RUNNING_P2P>PRE_COPY_P2P", "STOP>STOP_COPY", "STOP>RESUMING"]);
const SAVING = new Set([PRE_COPY, PRE_COPY_P2P, STOP_COPY]);

/** The reference for one set of migration_flags. */
function reference(flags: number) {
  const p2p = (flags & VFIO_MIGRATION_P2P) !== 0;
  const pre = (flags & VFIO_MIGRATION_PRE_COPY) !== 0;
  const supported = (s: number): boolean =>
    s === STOP || s === RUNNING || s === STOP_COPY || s === RESUMING || (s === RUNNING_P2P && p2p) || (s === PRE_COPY && pre) || (s === PRE_COPY_P2P && pre && p2p);
  // An unsupported optional state behaves as the state it refines.
  const rep = (s: number): number => (s === RUNNING_P2P && !p2p ? RUNNING : s === PRE_COPY_P2P && !p2p ? PRE_COPY : s);
  const arcs = new Set<string>();
  for (const [a, b] of UAPI_ARCS) {
    if (!pre && (a === PRE_COPY || a === PRE_COPY_P2P || b === PRE_COPY || b === PRE_COPY_P2P)) continue;
    const x = rep(a);
    const y = rep(b);
    if (x !== y) arcs.add(`${x}>${y}`);
  }
  /** BFS distance from `from` to `to`; `inside(u)` says whether u may be an interior state. */
  const bfs = (from: number, to: number, inside: (u: number) => boolean, allowed: (v: number) => boolean): number => {
    const dist = new Map<number, number>([[from, 0]]);
    const queue = [from];
    while (queue.length) {
      const u = queue.shift()!;
      if (u !== from && !inside(u)) continue;
      for (let v = 1; v < 8; v++) {
        if (!supported(v) || !allowed(v) || dist.has(v) || !arcs.has(`${u}>${v}`)) continue;
        dist.set(v, dist.get(u)! + 1);
        if (v === to) return dist.get(v)!;
        queue.push(v);
      }
    }
    return -1;
  };
  /** The shortest legal path's length from `from` to `to`, or -1 when the request must fail. */
  const shortest = (from: number, to: number): number => {
    if (from === to) return 0;
    // "STOP_COPY -> PRE_COPY, STOP_COPY -> PRE_COPY_P2P: These arcs are not permitted and return error if requested."
    if (from === STOP_COPY && (to === PRE_COPY || to === PRE_COPY_P2P)) return -1;
    const outside = bfs(from, to, (u) => !SAVING.has(u), () => true);
    const session = SAVING.has(from) && SAVING.has(to) ? bfs(from, to, () => true, (v) => SAVING.has(v)) : -1;
    return outside < 0 ? session : session < 0 ? outside : Math.min(outside, session);
  };
  return { supported, arcs, shortest };
}

/** A driver that only walks the FSM, recording each arc it is asked to take. */
class ArcRecorder implements VfioDeviceDriver, VfioMigrationOps {
  readonly name = "arc-recorder";
  readonly migOps = this;
  state = RUNNING;
  arcs: [number, number][] = [];
  constructor(readonly migrationFlags: number, private readonly numStates = 8) {}
  migrationSetState(target: number): KernelResult<VfioMigrationFile | null> {
    while (this.state !== target) {
      const next = vfioMigGetNextState(this.migrationFlags, this.state, target, this.numStates);
      if (!next.ok) return kernelFailure(next.errno);
      this.arcs.push([this.state, next.value]);
      this.state = next.value;
    }
    return { ok: true, value: null };
  }
  migrationGetState(): KernelResult<number> {
    return { ok: true, value: this.state };
  }
}

const FLAG_SETS = [
  VFIO_MIGRATION_STOP_COPY,
  VFIO_MIGRATION_STOP_COPY | VFIO_MIGRATION_P2P,
  VFIO_MIGRATION_STOP_COPY | VFIO_MIGRATION_PRE_COPY,
  VFIO_MIGRATION_STOP_COPY | VFIO_MIGRATION_P2P | VFIO_MIGRATION_PRE_COPY,
];

function open(driver: VfioDeviceDriver, profile = undefined as typeof VFIO_CORE_LINUX_6_1 | undefined) {
  const proc = new Process();
  installVfioDevice(proc, "/dev/vfio/devices/vfio0", new VfioCoreDevice(driver, profile));
  const d = VfioDevice.open(proc, "/dev/vfio/devices/vfio0");
  if (!d.ok) throw new Error("open");
  return { proc, dev: d.value };
}

test.each(FLAG_SETS)("random SET sequences follow the uAPI's shortest legal paths (migration_flags %i)", (flags) => {
  const ref = reference(flags);
  const rng = new Rng(0x5eed + flags);
  const drv = new ArcRecorder(flags);
  const { dev } = open(drv);
  let sets = 0;
  let okSets = 0;
  for (let i = 0; i < 1500; i++) {
    const target = rng.chance(0.05) ? [ERROR, 8, 100][rng.int(3)] : 1 + rng.int(7);
    const from = drv.state;
    drv.arcs = [];
    const r = dev.setState(target);
    sets++;
    const want = target >= 1 && target < 8 && ref.supported(target) ? ref.shortest(from, target) : -1;
    const ctx = `${N[from]} -> ${N[target] ?? target}`;
    if (want < 0) {
      expect({ ctx, ok: r.ok }).toEqual({ ctx, ok: false });
      expect({ ctx, state: drv.state }).toEqual({ ctx, state: from }); // nothing moved
      continue;
    }
    okSets++;
    expect({ ctx, ok: r.ok, state: drv.state, steps: drv.arcs.length }).toEqual({ ctx, ok: true, state: target, steps: want });
    const inSession = drv.arcs.every(([a, b]) => SAVING.has(a) && SAVING.has(b));
    drv.arcs.forEach(([a, b], k) => {
      expect({ ctx, arc: `${N[a]}>${N[b]}`, legal: ref.arcs.has(`${a}>${b}`) }).toEqual({ ctx, arc: `${N[a]}>${N[b]}`, legal: true });
      if (k < drv.arcs.length - 1 && !inSession) expect({ ctx, interior: N[b], saving: SAVING.has(b) }).toEqual({ ctx, interior: N[b], saving: false });
    });
  }
  expect(okSets).toBeGreaterThan(sets / 2);
});

// mtty always has P2P (and PRE_COPY from 6.2): the arcs it implements are those of these two.
test.each([FLAG_SETS[1], FLAG_SETS[3]])("mtty returns a data_fd exactly when the last arc is a new-data_fd arc (migration_flags %i)", (flags) => {
  const ref = reference(flags);
  const rng = new Rng(0xfd + flags);
  const mtty = new MttyDevice();
  (mtty as { migrationFlags: number }).migrationFlags = flags; // the sample's arcs, fewer optional states
  const { dev, proc } = open(mtty);
  let fds = 0;
  for (let i = 0; i < 1000; i++) {
    const target = 1 + rng.int(7);
    const from = mtty.state;
    if (rng.chance(0.05)) {
      expect(dev.reset().ok).toBe(true);
      continue;
    }
    const want = ref.supported(target) ? ref.shortest(from, target) : -1;
    const r = dev.setState(target);
    if (from === RESUMING && want > 0) {
      // Leaving RESUMING needs a complete stream; without one mtty fails and stays.
      expect(r.ok).toBe(false);
      expect(mtty.state).toBe(RESUMING);
      expect(dev.reset().ok).toBe(true);
      continue;
    }
    expect({ from: N[from], target: N[target], ok: r.ok }).toEqual({ from: N[from], target: N[target], ok: want >= 0 });
    if (!r.ok) continue;
    // The last arc: reconstruct it from the kernel's next-state function.
    let last = "";
    for (let s = from; s !== target; ) {
      const n = vfioMigGetNextState(flags, s, target);
      if (!n.ok) throw new Error("unreachable");
      last = `${N[s]}>${N[n.value]}`;
      s = n.value;
    }
    expect({ last, fd: r.value.dataFd !== null }).toEqual({ last, fd: NEW_FD_ARCS.has(last) });
    if (r.value.dataFd !== null) {
      fds++;
      expect(proc.close(r.value.dataFd).ret).toBe(0);
    }
  }
  expect(fds).toBeGreaterThan(10);
});

test("Linux 6.1's table: PRE_COPY states are out of range whatever the flags say", () => {
  const drv = new ArcRecorder(VFIO_MIGRATION_STOP_COPY | VFIO_MIGRATION_P2P, 6);
  const { dev } = open(drv, VFIO_CORE_LINUX_6_1);
  const ref = reference(VFIO_MIGRATION_STOP_COPY | VFIO_MIGRATION_P2P);
  for (let from = 1; from < 6; from++)
    for (let to = 1; to < 8; to++) {
      expect(dev.setState(from).ok).toBe(true);
      drv.arcs = [];
      const r = dev.setState(to);
      const want = to < 6 ? ref.shortest(from, to) : -1;
      expect({ from, to, ok: r.ok, steps: drv.arcs.length }).toEqual({ from, to, ok: want >= 0, steps: Math.max(want, 0) });
    }
});
