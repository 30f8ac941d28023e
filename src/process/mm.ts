/**
 * The parts of struct mm_struct the model keeps: user memory, locked_vm (what
 * /proc/PID/status shows as VmLck) with __account_locked_vm()'s charging rule, and
 * mmap_lock, which simulated threads of a `Scheduler` contend for.
 */
import { WasmCore } from "../wasm/core";
import { Errno } from "../uapi/errno";
import { UserMemory } from "./memory";
import type { GupBehaviour } from "./gup";
import { PAGE_SHIFT } from "./vma";
import { RwSemaphore } from "./rwsem";
import { Scheduler } from "./sched";

/** RLIM_INFINITY as a u64. */
export const RLIM_INFINITY = 0xffff_ffff_ffff_ffffn;

/** Capability numbers the model knows (include/uapi/linux/capability.h). */
export const CAP_IPC_LOCK = 14;
export const CAP_SYS_RESOURCE = 24;

/** One address space. */
export class MmStruct {
  /** Pages charged to this mm (mm->locked_vm). */
  lockedVm = 0;
  /** Pages long-term pinned by iommufd (mm->pinned_vm, /proc/PID/status VmPin). */
  pinnedVm = 0;
  /** WARN_ON_ONCE hits: uncharges of more than was charged (a model bug if ever non-zero). */
  underflowWarnings = 0;
  /** Whether the mm still has users (mmget_not_zero succeeds). */
  alive = true;
  /** Its memory. */
  readonly memory: UserMemory;
  /** mm->mmap_lock (mmap_sem before 5.8). */
  readonly mmapLock = new RwSemaphore("mmap_lock");
  private schedRef: Scheduler | null = null;

  constructor(core: WasmCore, gup?: Readonly<GupBehaviour>) {
    this.memory = new UserMemory(core, gup);
  }

  /**
   * The scheduler whose threads use this mm: who `current` is and how a contended
   * mmap_lock is waited for. Until `Scheduler.attach`-ed, a private one where the caller is
   * the only thread (so the lock is never contended).
   */
  get sched(): Scheduler {
    return (this.schedRef ??= new Scheduler());
  }

  set sched(s: Scheduler) {
    this.schedRef = s;
  }

  /** mmap_write_lock_killable(): 0, or -EINTR when a fatal signal ends the wait. */
  mmapWriteLockKillable(): number {
    return this.mmapLock.downWriteKillableIn(this.sched);
  }

  /** mmap_write_unlock(). */
  mmapWriteUnlock(): void {
    this.mmapLock.upWrite(this.sched.current);
  }

  /** mmap_read_lock() (not killable: GUP's lock). */
  mmapReadLock(): void {
    this.mmapLock.downReadIn(this.sched);
  }

  /** mmap_read_unlock(). */
  mmapReadUnlock(): void {
    this.mmapLock.upRead(this.sched.current);
  }

  /**
   * `mm->locked_vm += npage` with no limit and no underflow check, as Linux <= 4.10's
   * vfio_lock_acct() and vfio_lock_acct_bg() did. The count is an unsigned long there: an
   * uncharge applied before the charge it undoes wraps it to a huge value, which the model
   * keeps as a negative number (see `lockedVmExceeds`).
   */
  lockedVmAdd(npage: number): void {
    this.lockedVm += npage;
  }

  /**
   * `locked_vm + pages > limit` compared as the kernel's unsigned longs (a wrapped, negative
   * count is huge). `limitPages` is RLIMIT_MEMLOCK >> PAGE_SHIFT, below 2^52, so a Number
   * holds it exactly.
   */
  lockedVmExceeds(pages: number, limitPages: number): boolean {
    return this.lockedVm < 0 || this.lockedVm + pages > limitPages;
  }

  /** VmLck in KiB. */
  get vmLckKb(): number {
    return this.lockedVm << (PAGE_SHIFT - 10);
  }

  /** VmPin in KiB. */
  get vmPinKb(): number {
    return this.pinnedVm << (PAGE_SHIFT - 10);
  }

  /**
   * __account_locked_vm(mm, pages, inc, task, bypass_rlim): on increase, -ENOMEM when
   * locked_vm + pages exceeds the task's RLIMIT_MEMLOCK in pages (unless bypassed);
   * on decrease, subtracts (Linux WARNs on underflow and wraps; the model clamps at 0 and
   * counts the warning in `underflowWarnings`). Returns 0 or -ENOMEM.
   */
  accountLockedVm(pages: number, inc: boolean, rlimitMemlock: bigint, bypassRlim: boolean): number {
    if (inc) {
      if (!bypassRlim && this.lockedVm + pages > this.memlockPages.of(rlimitMemlock)) return -Errno.ENOMEM;
      this.lockedVm += pages;
      return 0;
    }
    if (pages > this.lockedVm) {
      this.underflowWarnings++;
      this.lockedVm = 0;
      return 0;
    }
    this.lockedVm -= pages;
    return 0;
  }

  private readonly memlockPages = new RlimitPages();
}

const PAGE_SHIFT_BIG = BigInt(PAGE_SHIFT);

/**
 * `rlimit >> PAGE_SHIFT` as a Number (exact: RLIMIT_MEMLOCK is below 2^64, the page count
 * below 2^52), converted once per limit value: every MAP_DMA checks its charge against it,
 * and a BigInt shift plus a conversion per check cost more than the rest of the check.
 */
export class RlimitPages {
  private rlim = -1n;
  private pages = 0;

  /** The page count of `rlim` bytes. */
  of(rlim: bigint): number {
    if (rlim !== this.rlim) {
      this.rlim = rlim;
      this.pages = Number(rlim >> PAGE_SHIFT_BIG);
    }
    return this.pages;
  }
}
