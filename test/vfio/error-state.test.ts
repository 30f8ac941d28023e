/**
 * ERROR: "any transition request can be failed with an errno return and may then move
 * the device_state into ERROR ... To recover from ERROR VFIO_DEVICE_RESET must be used".
 * A driver whose arcs can fail and that chooses ERROR (vfioMigrationSetState "error"):
 * every SET from ERROR to another state fails EINVAL (vfio_mig_get_next_state refuses ERROR
 * as a start), GET reports 0, SET to ERROR from elsewhere is EINVAL, and only a reset leaves it. With "stay" (what
 * mtty and mlx5 do) a failed arc inside a combination leaves the last good state visible.
 */
import { Process } from "../../src/process";
import { Errno, kernelFailure, type KernelResult } from "../../src/uapi/errno";
import { VFIO_DEVICE_RESET, VFIO_MIGRATION_P2P, VFIO_MIGRATION_STOP_COPY } from "../../src/uapi/vfio";
import { VfioCoreDevice, VfioDevice, installVfioDevice, vfioMigrationSetState } from "../../src/vfio";
import type { UserAccess } from "../../src/process";
import type { VfioDeviceDriver, VfioMigrationFile, VfioMigrationOps, VfioMigrationStepper } from "../../src/vfio";

const [ERROR, STOP, RUNNING, STOP_COPY, , RUNNING_P2P] = [0, 1, 2, 3, 4, 5];

class Flaky implements VfioDeviceDriver, VfioMigrationOps, VfioMigrationStepper {
  readonly name = "flaky";
  readonly migrationFlags = VFIO_MIGRATION_STOP_COPY | VFIO_MIGRATION_P2P;
  readonly migOps = this;
  state = RUNNING;
  /** The arc that fails, as "FROM>TO". */
  failing = "";
  constructor(private readonly onFailedArc: "stay" | "error") {}
  stepState(next: number): KernelResult<VfioMigrationFile | null> {
    return `${this.state}>${next}` === this.failing ? kernelFailure(Errno.EIO) : { ok: true, value: null };
  }
  migrationSetState(target: number) {
    return vfioMigrationSetState(this, target, 8, this.onFailedArc);
  }
  migrationGetState(): KernelResult<number> {
    return { ok: true, value: this.state };
  }
  ioctl(_t: UserAccess, cmd: number): number {
    if (cmd !== VFIO_DEVICE_RESET) return -Errno.ENOTTY;
    this.state = RUNNING;
    return 0;
  }
}

function open(d: Flaky) {
  const proc = new Process();
  installVfioDevice(proc, "/dev/vfio/devices/vfio0", new VfioCoreDevice(d));
  const r = VfioDevice.open(proc, "/dev/vfio/devices/vfio0");
  if (!r.ok) throw new Error("open");
  return r.value;
}

test("a failed arc into ERROR: every SET fails, GET says ERROR, only RESET leaves it", () => {
  const d = new Flaky("error");
  const dev = open(d);
  d.failing = `${STOP}>${STOP_COPY}`;
  // RUNNING -> STOP_COPY is RUNNING -> RUNNING_P2P -> STOP -> STOP_COPY; the third arc fails.
  expect(dev.setState(STOP_COPY)).toMatchObject({ ok: false, errno: Errno.EIO });
  expect(dev.getState()).toEqual({ ok: true, value: ERROR });
  for (const s of [STOP, RUNNING, RUNNING_P2P, STOP_COPY]) expect(dev.setState(s)).toMatchObject({ ok: false, errno: Errno.EINVAL });
  // ERROR -> ERROR takes no arc: the drivers' loop (while state != target) succeeds at once.
  expect(dev.setState(ERROR)).toEqual({ ok: true, value: { dataFd: null } });
  expect(dev.getState()).toEqual({ ok: true, value: ERROR });
  expect(dev.reset().ok).toBe(true);
  expect(dev.getState()).toEqual({ ok: true, value: RUNNING });
  d.failing = "";
  expect(dev.setState(STOP_COPY).ok).toBe(true);
});

test("a failed arc with 'stay': the state the last good arc reached", () => {
  const d = new Flaky("stay");
  const dev = open(d);
  d.failing = `${STOP}>${STOP_COPY}`;
  expect(dev.setState(STOP_COPY)).toMatchObject({ ok: false, errno: Errno.EIO });
  expect(dev.getState()).toEqual({ ok: true, value: STOP });
  expect(dev.setState(ERROR)).toMatchObject({ ok: false, errno: Errno.EINVAL });
  expect(dev.setState(RUNNING).ok).toBe(true);
});
