/**
 * The two designs of type1's locked-memory accounting (seed 003, the review of "vfio/type1:
 * Remove locked page accounting workqueue", merged for v4.11 and sent to stable).
 *
 * Up to 4.10, vfio_lock_acct() could not fail: it updated mm->locked_vm only when
 * down_write_trylock(&mm->mmap_sem) succeeded, and otherwise queued the update to
 * vfio_lock_acct_bg() on system_wq. The RLIMIT_MEMLOCK check of vfio_pin_pages_remote()
 * reads locked_vm without the lock, so a charge still queued lets the next map pass the
 * check (mapping past the limit), and an uncharge still queued refuses a map that fits.
 *
 * From 4.11, vfio_lock_acct() takes the lock with down_write_killable() (later
 * mmap_write_lock_killable() in mm_lock_acct()), rechecks the limit under it
 * (__account_locked_vm() today), and returns 0, -ENOMEM, -EINTR (a fatal signal while
 * waiting) or -ESRCH (the mm is gone); the callers unwind what they pinned.
 */
import type { MmStruct } from "../process/mm";
import type { SimThread, ThreadBody, WorkItem } from "../process/sched";
import type { Task } from "../process/task";

/**
 * `synchronous` (Linux 4.11 and later, the default): charges wait for mmap_lock, are
 * limit-checked under it and can fail. `workqueue` (Linux 4.10 and earlier): a charge
 * whose trylock fails is queued to a kworker and never fails.
 */
export type LockAccounting = "synchronous" | "workqueue";

/** Every value, for option parsers. */
export const LOCK_ACCOUNTING_NAMES: readonly LockAccounting[] = ["synchronous", "workqueue"];

/**
 * mm_lock_acct(): charge (npage > 0) or uncharge `npage` pages to `mm` under
 * mmap_write_lock_killable(), the limit checked under the lock. 0, -EINTR or -ENOMEM.
 */
export function mmLockAcct(task: Task, mm: MmStruct, lockCap: boolean, npage: number): number {
  const ret = mm.mmapWriteLockKillable();
  if (ret) return ret;
  const r = mm.accountLockedVm(Math.abs(npage), npage > 0, task.rlimitMemlock(), lockCap);
  mm.mmapWriteUnlock();
  return r;
}

/** struct vwork: a queued locked_vm update, holding a reference on its mm. */
class Vwork implements WorkItem {
  readonly name: string;
  constructor(
    readonly mm: MmStruct,
    readonly npage: number,
  ) {
    this.name = `vfio_lock_acct_bg(${npage > 0 ? "+" : ""}${npage})`;
  }

  /** vfio_lock_acct_bg(): down_write (not killable), add, up_write, mmput. */
  *run(self: SimThread): ThreadBody {
    yield* this.mm.mmapLock.downWrite(self);
    this.mm.lockedVmAdd(this.npage);
    this.mm.mmapLock.upWrite(self);
  }
}

/**
 * Linux <= 4.10's vfio_lock_acct(task, npage): nothing for an exited process; else add
 * to locked_vm now if down_write_trylock() succeeds, or queue vfio_lock_acct_bg(). Never
 * checks the limit and never fails.
 */
export function vfioLockAcctWorkqueue(mm: MmStruct, npage: number): void {
  if (npage === 0 || !mm.alive) return;
  const sched = mm.sched;
  const current = sched.current;
  if (mm.mmapLock.downWriteTrylock(current)) {
    mm.lockedVmAdd(npage);
    mm.mmapLock.upWrite(current);
    return;
  }
  // "Couldn't get mmap_sem lock, so must setup to update mm->locked_vm later."
  sched.scheduleWork(new Vwork(mm, npage));
}
