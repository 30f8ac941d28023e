/**
 * What other threads of a process do with mmap_lock, as simulated-thread steps: each holds
 * the lock across one `yield`, the point where the scheduler may run someone else while
 * the lock is held. Use them inside `Scheduler.spawn` bodies: `yield* pageFault(...)`.
 */
import { Errno } from "../uapi/errno";
import type { Process, SyscallResult } from "./process";
import type { SimThread, ThreadStep } from "./sched";

/** A page fault (handle_mm_fault under mmap_read_lock): `write` faults the page in writable. 0 or -EFAULT. */
export function* pageFault(proc: Process, self: SimThread, addr: bigint, write: boolean): Generator<ThreadStep, number, void> {
  const mm = proc.mm;
  if (!mm) return -Errno.EFAULT;
  yield* mm.mmapLock.downRead(self);
  const r = write ? mm.memory.faultInWriteable(addr, 1) : mm.memory.copyFromUser(addr, 1) ? 0 : 1;
  yield;
  mm.mmapLock.upRead(self);
  return r === 0 ? 0 : -Errno.EFAULT;
}

/** mmap(2) of anonymous memory, the VMA change under mmap_write_lock. */
export function* mmapLocked(proc: Process, self: SimThread, len: number): Generator<ThreadStep, SyscallResult, void> {
  const mm = proc.mm;
  if (!mm) return proc.mmap(undefined, len);
  yield* mm.mmapLock.downWrite(self);
  const r = proc.mmap(undefined, len);
  yield;
  mm.mmapLock.upWrite(self);
  return r;
}

/** munmap(2), the VMA change under mmap_write_lock. */
export function* munmapLocked(proc: Process, self: SimThread, addr: bigint, len: number): Generator<ThreadStep, SyscallResult, void> {
  const mm = proc.mm;
  if (!mm) return proc.munmap(addr, len);
  yield* mm.mmapLock.downWrite(self);
  const r = proc.munmap(addr, len);
  yield;
  mm.mmapLock.upWrite(self);
  return r;
}
