/**
 * vfio_mig_get_next_state() (drivers/vfio/vfio_main.c): the next arc a driver takes
 * towards a requested migration state. Combination transitions go arc by arc through the
 * table below, skipping states the device's migration_flags do not support, and never
 * through a saving state (STOP_COPY, PRE_COPY, PRE_COPY_P2P) as an interior step. The
 * table is vfio_from_fsm_table of Linux 6.12; Linux 6.1 has the same table without the
 * two PRE_COPY states (added in 6.2), so there the PRE_COPY values are simply invalid.
 */
import { Errno, kernelFailure, type KernelResult } from "../uapi/errno";
import { fput } from "../process/fref";
import type { VfioMigrationFile } from "./driver";
import {
  VFIO_DEVICE_STATE_ERROR as ERROR,
  VFIO_DEVICE_STATE_PRE_COPY as PRE_COPY,
  VFIO_DEVICE_STATE_PRE_COPY_P2P as PRE_COPY_P2P,
  VFIO_DEVICE_STATE_RESUMING as RESUMING,
  VFIO_DEVICE_STATE_RUNNING as RUNNING,
  VFIO_DEVICE_STATE_RUNNING_P2P as RUNNING_P2P,
  VFIO_DEVICE_STATE_STOP as STOP,
  VFIO_DEVICE_STATE_STOP_COPY as STOP_COPY,
  VFIO_MIGRATION_P2P,
  VFIO_MIGRATION_PRE_COPY,
  VFIO_MIGRATION_STOP_COPY,
} from "../uapi/vfio";

/**
 * vfio_from_fsm_table[cur][new]: the next state from `cur` towards `new`, indexed by
 * enum vfio_device_mig_state (ERROR, STOP, RUNNING, STOP_COPY, RESUMING, RUNNING_P2P,
 * PRE_COPY, PRE_COPY_P2P).
 */
const FROM_FSM: readonly (readonly number[])[] = [
  /* ERROR */ [ERROR, ERROR, ERROR, ERROR, ERROR, ERROR, ERROR, ERROR],
  /* STOP */ [ERROR, STOP, RUNNING_P2P, STOP_COPY, RESUMING, RUNNING_P2P, RUNNING_P2P, RUNNING_P2P],
  /* RUNNING */ [ERROR, RUNNING_P2P, RUNNING, RUNNING_P2P, RUNNING_P2P, RUNNING_P2P, PRE_COPY, RUNNING_P2P],
  /* STOP_COPY */ [ERROR, STOP, STOP, STOP_COPY, STOP, STOP, ERROR, ERROR],
  /* RESUMING */ [ERROR, STOP, STOP, STOP, RESUMING, STOP, STOP, STOP],
  /* RUNNING_P2P */ [ERROR, STOP, RUNNING, STOP, STOP, RUNNING_P2P, RUNNING, PRE_COPY_P2P],
  /* PRE_COPY */ [ERROR, RUNNING, RUNNING, PRE_COPY_P2P, RUNNING, RUNNING, PRE_COPY, PRE_COPY_P2P],
  /* PRE_COPY_P2P */ [ERROR, RUNNING_P2P, RUNNING_P2P, STOP_COPY, RUNNING_P2P, RUNNING_P2P, PRE_COPY, PRE_COPY_P2P],
];

/** state_flags_table: the migration_flags a state needs (ERROR needs all: never a valid endpoint). */
const STATE_FLAGS: readonly number[] = [
  /* ERROR */ 0xffffffff,
  /* STOP */ VFIO_MIGRATION_STOP_COPY,
  /* RUNNING */ VFIO_MIGRATION_STOP_COPY,
  /* STOP_COPY */ VFIO_MIGRATION_STOP_COPY,
  /* RESUMING */ VFIO_MIGRATION_STOP_COPY,
  /* RUNNING_P2P */ VFIO_MIGRATION_STOP_COPY | VFIO_MIGRATION_P2P,
  /* PRE_COPY */ VFIO_MIGRATION_STOP_COPY | VFIO_MIGRATION_PRE_COPY,
  /* PRE_COPY_P2P */ VFIO_MIGRATION_STOP_COPY | VFIO_MIGRATION_P2P | VFIO_MIGRATION_PRE_COPY,
];

/** Whether `flags` (migration_flags) support `state` within the first `numStates` states. */
function supported(state: number, flags: number, numStates: number): boolean {
  return state >= 0 && state < numStates && ((STATE_FLAGS[state] & flags) >>> 0) === STATE_FLAGS[state] >>> 0;
}

/**
 * vfio_mig_get_next_state(): the next state on the way from `cur` to `target`, or EINVAL
 * (either state unsupported or out of range, ERROR as either end, or a blocked
 * combination such as STOP_COPY -> PRE_COPY). `numStates` is 6 on Linux 6.1, 8 from 6.2.
 */
export function vfioMigGetNextState(migrationFlags: number, cur: number, target: number, numStates = 8): KernelResult<number> {
  if (!supported(cur, migrationFlags, numStates)) return kernelFailure(Errno.EINVAL);
  if (!supported(target, migrationFlags, numStates)) return kernelFailure(Errno.EINVAL);
  let next = FROM_FSM[cur][target];
  while (!supported(next, migrationFlags, numStates) && next !== ERROR) next = FROM_FSM[next][target];
  return next !== ERROR ? { ok: true, value: next } : kernelFailure(Errno.EINVAL);
}

/** Whether a state is in the saving group (its arcs in may return a data_fd to read). */
export function isSavingState(state: number): boolean {
  return state === STOP_COPY || state === PRE_COPY || state === PRE_COPY_P2P;
}

/** A driver's side of the set-state loop: its current state and one arc. */
export interface VfioMigrationStepper {
  /** The device's enum vfio_device_mig_state. */
  state: number;
  readonly migrationFlags: number;
  /** One arc from `state` to `next` (the driver's step_state): the data file it opened, or null. */
  stepState(next: number): KernelResult<VfioMigrationFile | null>;
}

/**
 * The set-state loop every migration driver runs (mtty_set_state, mlx5vf_pci_set_device_state):
 * vfio_mig_get_next_state() then one arc, until the target. A failed arc stops the loop
 * where it is (`onFailedArc` "stay", what mtty and mlx5 do) or moves the device to ERROR
 * ("error", which the uAPI allows: "any transition request can be failed with an errno
 * return and may then move the device_state into ERROR"). A file on an interior arc is a
 * driver bug (WARN_ON): EINVAL.
 */
export function vfioMigrationSetState(dev: VfioMigrationStepper, target: number, numStates = 8, onFailedArc: "stay" | "error" = "stay"): KernelResult<VfioMigrationFile | null> {
  let ret: VfioMigrationFile | null = null;
  while (dev.state !== target) {
    const next = vfioMigGetNextState(dev.migrationFlags, dev.state, target, numStates);
    if (!next.ok) return next;
    const step = dev.stepState(next.value);
    if (!step.ok) {
      if (onFailedArc === "error") dev.state = ERROR;
      return step;
    }
    ret = step.value;
    dev.state = next.value;
    if (ret && target !== next.value) {
      fput(ret);
      return kernelFailure(Errno.EINVAL);
    }
  }
  return { ok: true, value: ret };
}
