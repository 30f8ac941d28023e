/**
 * The deterministic scheduler and mmap_lock's rw_semaphore: enumeration is complete and
 * exact (checked against an independent count of interleavings), a race on an unlocked
 * read-modify-write is found and the lock removes it in every schedule, seeded and
 * replayed runs are reproducible, and the rwsem follows Linux's trylock / killable rules.
 */
import { Errno } from "../../src/uapi/errno";
import { RwSemaphore, RwsemError } from "../../src/process/rwsem";
import { ReplayChooser, Scheduler, SeededChooser, exploreSchedules, type ThreadBody, type SimThread } from "../../src/process/sched";

/** Threads `a` and `b`, each logging `n` steps with a yield after each. */
function twoLoggers(sched: Scheduler, n: number, log: string[]): void {
  for (const name of ["a", "b"]) {
    sched.spawn(name, function* () {
      for (let i = 1; i <= n; i++) {
        log.push(`${name}${i}`);
        yield;
      }
    });
  }
}

/** Every interleaving of two sequences (the independent reference). */
function merges(a: string[], b: string[]): string[][] {
  if (a.length === 0) return [b];
  if (b.length === 0) return [a];
  return [...merges(a.slice(1), b).map((m) => [a[0], ...m]), ...merges(a, b.slice(1)).map((m) => [b[0], ...m])];
}

describe("Scheduler", () => {
  const binomial = (n: number, k: number): number => (k === 0 ? 1 : (binomial(n - 1, k - 1) * n) / k);

  it("enumerates every interleaving of two threads exactly once", () => {
    for (const n of [1, 2, 3]) {
      const seen: string[] = [];
      const rep = exploreSchedules((chooser) => {
        const sched = new Scheduler({ chooser });
        const log: string[] = [];
        twoLoggers(sched, n, log);
        expect(sched.run().stuck).toBeNull();
        seen.push(log.join(" "));
      });
      const want = merges(
        Array.from({ length: n }, (_, i) => `a${i + 1}`),
        Array.from({ length: n }, (_, i) => `b${i + 1}`),
      ).map((m) => m.join(" "));
      expect(rep.complete).toBe(true);
      // n logging steps and the step that returns, per thread: C(2n+2, n+1) schedules,
      // which show every merge of the two logs.
      expect(rep.runs).toBe(binomial(2 * n + 2, n + 1));
      expect([...new Set(seen)].sort()).toEqual([...want].sort());
    }
  });

  it("stops at maxRuns and says the search is incomplete", () => {
    const rep = exploreSchedules(
      (chooser) => {
        const sched = new Scheduler({ chooser });
        twoLoggers(sched, 3, []);
        sched.run();
      },
      { maxRuns: 5 },
    );
    expect(rep).toEqual({ runs: 5, complete: false });
  });

  it("replays a schedule and a seed to the same run", () => {
    const runWith = (chooser: ReplayChooser | SeededChooser): string => {
      const sched = new Scheduler({ chooser });
      const log: string[] = [];
      twoLoggers(sched, 4, log);
      sched.run();
      return log.join(" ");
    };
    const seeded = [1, 2, 3, 4, 5].map((s) => runWith(new SeededChooser(s)));
    expect([1, 2, 3, 4, 5].map((s) => runWith(new SeededChooser(s)))).toEqual(seeded);
    expect(new Set(seeded).size).toBeGreaterThan(1);
    const first = new ReplayChooser([1, 1, 0, 1]);
    const story = runWith(first);
    expect(runWith(new ReplayChooser(first.schedule))).toBe(story);
  });

  /** Two threads add 1 to a shared counter, reading and writing it in separate steps. */
  function counterRace(chooser: ReplayChooser, sem: RwSemaphore | null): number {
    const sched = new Scheduler({ chooser });
    let counter = 0;
    const body = function* (self: SimThread): ThreadBody {
      if (sem) yield* sem.downWrite(self);
      const v = counter;
      yield;
      counter = v + 1;
      if (sem) sem.upWrite(self);
    };
    sched.spawn("t1", body);
    sched.spawn("t2", body);
    expect(sched.run().stuck).toBeNull();
    return counter;
  }

  it("finds the lost update of an unlocked read-modify-write, and none under the write lock", () => {
    const unlocked = new Set<number>();
    expect(exploreSchedules((c) => unlocked.add(counterRace(c, null))).complete).toBe(true);
    expect(unlocked).toEqual(new Set([1, 2]));
    const locked = new Set<number>();
    expect(exploreSchedules((c) => locked.add(counterRace(c, new RwSemaphore("sem")))).complete).toBe(true);
    expect(locked).toEqual(new Set([2]));
  });

  it("runs queued work in a kworker and ends once it idles", () => {
    const sched = new Scheduler();
    const done: string[] = [];
    sched.scheduleWork({
      name: "w",
      *run() {
        yield;
        done.push("w");
      },
    });
    expect(sched.pendingWork).toBe(1);
    expect(sched.run().stuck).toBeNull();
    expect(done).toEqual(["w"]);
    expect(sched.pendingWork).toBe(0);
  });

  it("reports a deadlock instead of hanging", () => {
    const sched = new Scheduler();
    const sem = new RwSemaphore("sem");
    expect(sem.downWriteTrylock(sched.main)).toBe(true);
    sched.spawn("reader", function* (self) {
      yield* sem.downRead(self);
    });
    expect(sched.run().stuck).toMatch(/deadlock: reader waits for sem \(read\)/);
  });
});

describe("RwSemaphore", () => {
  it("shares readers, excludes a writer, and fails trylocks while anyone waits", () => {
    // The reader's first step, then the writer's (it queues).
    const t = new Scheduler({ chooser: new ReplayChooser([0, 1]) });
    const x = new RwSemaphore("x");
    const order: string[] = [];
    t.spawn("reader", function* (self) {
      yield* x.downRead(self);
      order.push(`trylock write while read-held: ${x.downWriteTrylock(t.main)}`);
      yield;
      const got = x.downReadTrylock(t.main);
      if (got) x.upRead(t.main);
      order.push(`trylock read while a writer waits: ${got}`);
      x.upRead(self);
    });
    t.spawn("writer", function* (self) {
      yield* x.downWrite(self);
      order.push(`writer in, readers ${x.readCount}`);
      x.upWrite(self);
    });
    expect(t.run().stuck).toBeNull();
    expect(order).toEqual(["trylock write while read-held: false", "trylock read while a writer waits: false", "writer in, readers 0"]);
  });

  it("ends a killable wait with -EINTR on SIGKILL, and a synchronous caller's too", () => {
    const sched = new Scheduler();
    const sem = new RwSemaphore("sem");
    const results: number[] = [];
    sched.spawn("holder", function* (self) {
      yield* sem.downRead(self);
      yield { ready: () => results.length === 2, why: "both victims back" };
      sem.upRead(self);
    });
    const victim = sched.spawn("victim", function* (self) {
      results.push(yield* sem.downWriteKillable(self));
    });
    const syncVictim = sched.spawn("sync", function* () {
      // A kernel call made of plain code: it sleeps through Scheduler.waitEvent.
      results.push(sem.downWriteKillableIn(sched));
    });
    sched.spawn("killer", function* () {
      sched.kill(victim);
      sched.kill(syncVictim);
    });
    expect(sched.run().stuck).toBeNull();
    expect(results).toEqual([-Errno.EINTR, -Errno.EINTR]);
    expect(sem.isLocked).toBe(false);
    expect(sem.waiterCount).toBe(0);
  });

  it("takes a free lock despite a pending fatal signal (the fast path does not look)", () => {
    const sched = new Scheduler();
    const sem = new RwSemaphore("sem");
    sched.main.fatalSignalPending = true;
    expect(sem.downWriteKillableIn(sched)).toBe(0);
    sem.upWrite(sched.main);
  });

  it("rejects an unlock by a thread that does not hold the lock", () => {
    const sched = new Scheduler();
    const sem = new RwSemaphore("sem");
    expect(() => sem.upWrite(sched.main)).toThrow(RwsemError);
    expect(() => sem.upRead(sched.main)).toThrow(RwsemError);
  });
});
