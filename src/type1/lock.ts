/**
 * iommu->lock made explicit. The model is single-threaded, so the mutex cannot block; it
 * exists to check the kernel's locking rules: functions that need the lock assert it is
 * held, and re-taking it (a self-deadlock in the kernel) is reported as a model bug.
 */

/** Thrown only for a broken locking rule inside the model (never for bad user input). */
export class LockingError extends Error {}

/** A non-recursive mutex with ownership assertions. */
export class Mutex {
  private held = false;

  constructor(readonly name: string) {}

  /** mutex_lock(). */
  lock(): void {
    if (this.held) throw new LockingError(`${this.name}: recursive mutex_lock (self-deadlock in the kernel)`);
    this.held = true;
  }

  /** mutex_unlock(). */
  unlock(): void {
    if (!this.held) throw new LockingError(`${this.name}: unlock of an unlocked mutex`);
    this.held = false;
  }

  /** lockdep_assert_held(). */
  assertHeld(): void {
    if (!this.held) throw new LockingError(`${this.name}: must be held here`);
  }

  /** Whether it is held (for notifier callers and tests). */
  get isHeld(): boolean {
    return this.held;
  }
}
