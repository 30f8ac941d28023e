/**
 * struct rw_semaphore (kernel/locking/rwsem.c) as the model needs it for mm->mmap_lock:
 * shared readers or one writer, trylocks, blocking and killable acquisition, with waits
 * going through the `Scheduler` of simulated threads.
 *
 * Fairness follows Linux's fast and slow paths closely enough for the races of interest:
 * a trylock fails while anyone holds an incompatible lock or anyone waits (the count's
 * WAITERS flag makes rwsem_write_trylock's cmpxchg and rwsem_read_trylock fail); a
 * blocking acquisition takes a compatible lock even past waiters (optimistic spinning and
 * reader stealing), else queues and sleeps until the lock is compatible. Handoff after a
 * timeout is not modelled (the model has no time).
 */
import { Errno } from "../uapi/errno";
import type { Scheduler, SimThread, ThreadStep } from "./sched";

/** Thrown by an unlock the caller does not hold (a model bug, never bad input). */
export class RwsemError extends Error {}

interface Waiter {
  t: SimThread;
  write: boolean;
}

/** A reader-writer semaphore. */
export class RwSemaphore {
  private readonly readers: SimThread[] = [];
  private writer: SimThread | null = null;
  private readonly waiters: Waiter[] = [];

  constructor(readonly name: string) {}

  /** Whether anyone holds it. */
  get isLocked(): boolean {
    return this.writer !== null || this.readers.length > 0;
  }

  /** The write holder, if any. */
  get writeOwner(): SimThread | null {
    return this.writer;
  }

  /** How many read holds there are. */
  get readCount(): number {
    return this.readers.length;
  }

  /** How many threads sleep on it. */
  get waiterCount(): number {
    return this.waiters.length;
  }

  private compatible(write: boolean): boolean {
    return this.writer === null && (!write || this.readers.length === 0);
  }

  private take(t: SimThread, write: boolean): void {
    if (write) this.writer = t;
    else this.readers.push(t);
  }

  private unqueue(w: Waiter): void {
    const i = this.waiters.indexOf(w);
    if (i >= 0) this.waiters.splice(i, 1);
  }

  /** down_read_trylock(). */
  downReadTrylock(t: SimThread): boolean {
    if (this.waiters.length > 0 || !this.compatible(false)) return false;
    this.take(t, false);
    return true;
  }

  /** down_write_trylock(). */
  downWriteTrylock(t: SimThread): boolean {
    if (this.waiters.length > 0 || !this.compatible(true)) return false;
    this.take(t, true);
    return true;
  }

  /** up_read(). */
  upRead(t: SimThread): void {
    const r = this.readers;
    // The last reader in is usually the one leaving (GUP's lock/unlock pair): no search, no splice.
    if (r.length > 0 && r[r.length - 1] === t) {
      r.pop();
      return;
    }
    const i = r.indexOf(t);
    if (i < 0) throw new RwsemError(`${this.name}: up_read by ${t.name}, which holds no read lock`);
    r.splice(i, 1);
  }

  /** up_write(). */
  upWrite(t: SimThread): void {
    if (this.writer !== t) throw new RwsemError(`${this.name}: up_write by ${t.name}, the writer is ${this.writer?.name ?? "nobody"}`);
    this.writer = null;
  }

  /**
   * The slow path for a generator thread: sleep (yield) until compatible, or until a fatal
   * signal when killable. 0, or -EINTR with the thread off the queue.
   */
  private *acquire(t: SimThread, write: boolean, killable: boolean): Generator<ThreadStep, number, void> {
    if (this.compatible(write)) {
      this.take(t, write);
      return 0;
    }
    const w: Waiter = { t, write };
    this.waiters.push(w);
    const why = `${this.name} (${write ? "write" : "read"})`;
    for (;;) {
      if (this.compatible(write)) {
        this.unqueue(w);
        this.take(t, write);
        return 0;
      }
      if (killable && t.fatalSignalPending) {
        this.unqueue(w);
        return -Errno.EINTR;
      }
      yield { ready: () => this.compatible(write) || (killable && t.fatalSignalPending), why };
    }
  }

  /** down_read() in a generator thread: `yield* sem.downRead(self)`. */
  *downRead(t: SimThread): Generator<ThreadStep, void, void> {
    yield* this.acquire(t, false, false);
  }

  /** down_write() in a generator thread. */
  *downWrite(t: SimThread): Generator<ThreadStep, void, void> {
    yield* this.acquire(t, true, false);
  }

  /** down_write_killable() in a generator thread: 0 or -EINTR. */
  *downWriteKillable(t: SimThread): Generator<ThreadStep, number, void> {
    return yield* this.acquire(t, true, true);
  }

  /**
   * The slow path for synchronous kernel code running in `sched`'s current thread: sleep
   * through `Scheduler.waitEvent`. 0, or -EINTR (killable only) with the thread off the queue.
   */
  private acquireIn(sched: Scheduler, write: boolean, killable: boolean): number {
    const t = sched.current;
    if (this.compatible(write)) {
      this.take(t, write);
      return 0;
    }
    // rwsem_down_write_slowpath(): a pending fatal signal fails the wait before it sleeps.
    if (killable && t.fatalSignalPending) return -Errno.EINTR;
    const w: Waiter = { t, write };
    this.waiters.push(w);
    const ok = sched.waitEvent(() => this.compatible(write), killable, `${this.name} (${write ? "write" : "read"})`);
    this.unqueue(w);
    if (!ok) return -Errno.EINTR;
    this.take(t, write);
    return 0;
  }

  /** down_read() from synchronous kernel code (mmap_read_lock). */
  downReadIn(sched: Scheduler): void {
    this.acquireIn(sched, false, false);
  }

  /** down_write() from synchronous kernel code. */
  downWriteIn(sched: Scheduler): void {
    this.acquireIn(sched, true, false);
  }

  /** down_write_killable() from synchronous kernel code: 0 or -EINTR. */
  downWriteKillableIn(sched: Scheduler): number {
    return this.acquireIn(sched, true, true);
  }
}
