/**
 * Simulated threads and a deterministic scheduler, for the races the kernel's locks decide
 * (seed 003: locked_vm accounting against mmap_lock). JavaScript runs one thing at a time,
 * so concurrency is modelled, not real: a simulated thread is a generator whose every
 * `yield` is a point where another thread may run, and the scheduler picks who runs next
 * through a `Chooser`. The same chooser decisions give the same run, so any interleaving
 * found can be replayed (`ReplayChooser`), every interleaving up to a bound can be
 * enumerated (`exploreSchedules`) and seeded ones sampled (`SeededChooser`).
 *
 * Kernel code of the model is ordinary synchronous code. When it must sleep (a contended
 * `down_write_killable`), it calls `Scheduler.waitEvent`, which runs the other threads'
 * steps nested inside the wait until the condition holds (or a fatal signal arrives). A
 * thread waiting that way resumes only once every step started above it has returned: a
 * kernel call that starts while another is blocked runs to its end (or to its own wait)
 * first. That is the one interleaving bound besides `maxSteps`.
 *
 * Work queued with `scheduleWork` (schedule_work() on system_wq) runs in a kworker thread,
 * spawned on the first queued work, that the scheduler interleaves like any other.
 */
import { Rng } from "../util/random";

/** A wait: the thread can run again once `ready()` holds. */
export interface Blocked {
  /** Whether the wait is over. */
  readonly ready: () => boolean;
  /** What it waits for (for the run's log and deadlock reports). */
  readonly why: string;
  /** A kernel thread with nothing to do (not a deadlock when the run ends). */
  readonly idle?: boolean;
}

/** What a thread yields: nothing (a point where others may run) or a wait. */
export type ThreadStep = Blocked | undefined;

/** A thread body: a generator stepped by the scheduler. */
export type ThreadBody = Generator<ThreadStep, void, void>;

/** Thrown by a broken scheduling rule (a deadlock, the step bound): a model or scenario bug, never bad input. */
export class SchedulerError extends Error {}

/** A simulated thread: the parts of task_struct the model needs. */
export class SimThread {
  /** fatal_signal_pending(): a SIGKILL was sent (killable waits end with -EINTR). */
  fatalSignalPending = false;
  /** The wait it yielded, while it waits. */
  blocked: Blocked | null = null;
  /** The body returned. */
  done = false;
  /** It waits inside a synchronous kernel call (`waitEvent`): only that call can resume it. */
  inKernelWait = false;
  /** The generator the scheduler steps (null for `Scheduler.main`, which it never steps). */
  body: ThreadBody | null = null;

  constructor(readonly name: string) {}
}

/** Picks one of `n` >= 2 runnable threads (index into the scheduler's candidate list). */
export interface Chooser {
  choose(n: number): number;
}

/** Always the first candidate: the waiter itself when it can go on, else threads in spawn order. */
export const FIRST_CHOOSER: Chooser = { choose: () => 0 };

/** Uniformly random candidates from a seed (mulberry32): the same seed, the same run. */
export class SeededChooser implements Chooser {
  private readonly rng: Rng;
  constructor(readonly seed: number) {
    this.rng = new Rng(seed);
  }
  choose(n: number): number {
    return this.rng.int(n);
  }
}

/**
 * Follows `prefix`, then the first candidate, recording every decision and how many
 * candidates it had (`trail`): `exploreSchedules` backtracks on it, and `schedule` replays
 * the run exactly.
 */
export class ReplayChooser implements Chooser {
  /** Each decision taken: the index and the number of candidates. */
  readonly trail: Array<{ choice: number; of: number }> = [];
  constructor(private readonly prefix: readonly number[] = []) {}
  choose(n: number): number {
    const i = this.trail.length;
    const choice = i < this.prefix.length ? Math.min(this.prefix[i], n - 1) : 0;
    this.trail.push({ choice, of: n });
    return choice;
  }
  /** The decisions of the run so far (feed them to a new ReplayChooser to replay it). */
  get schedule(): number[] {
    return this.trail.map((c) => c.choice);
  }
}

/** A work item: what schedule_work() queues (its function runs in the kworker). */
export interface WorkItem {
  /** For the run's log. */
  readonly name: string;
  /** The work function, stepped by the kworker thread `self`. */
  run(self: SimThread): ThreadBody;
}

/** How a `Scheduler.run` ended. */
export interface RunResult {
  /** Steps taken by threads (nested ones included). */
  steps: number;
  /** Null when every thread finished and the kworker idles; else why the run stopped. */
  stuck: string | null;
}

/** Options of a scheduler. */
export interface SchedulerOptions {
  /** Who runs when several threads can (default: `FIRST_CHOOSER`). */
  chooser?: Chooser;
  /** Steps after which a run stops as stuck (default 10,000: a livelock guard). */
  maxSteps?: number;
  /** Record each step in `log` (default false). */
  log?: boolean;
}

/** A deterministic scheduler of simulated threads. */
export class Scheduler {
  /** The thread that runs outside any step: the test, or single-threaded use of the model. */
  readonly main = new SimThread("main");
  /** Spawned threads, in spawn order (the order candidates are offered in). */
  readonly threads: SimThread[] = [];
  /** One line per step when `log` was asked for. */
  readonly log: string[] = [];
  private readonly chooser: Chooser;
  private readonly maxSteps: number;
  private readonly logging: boolean;
  private running: SimThread;
  private steps = 0;
  private readonly systemWq: WorkItem[] = [];
  private kworker: SimThread | null = null;

  constructor(opts: SchedulerOptions = {}) {
    this.chooser = opts.chooser ?? FIRST_CHOOSER;
    this.maxSteps = opts.maxSteps ?? 10_000;
    this.logging = opts.log ?? false;
    this.running = this.main;
  }

  /** The thread running now (`current`). */
  get current(): SimThread {
    return this.running;
  }

  /** Works queued on system_wq and not yet started. */
  get pendingWork(): number {
    return this.systemWq.length;
  }

  /**
   * Makes this scheduler the one of each mm (`MmStruct.sched`): their mmap_lock waits and
   * `current` go through it. Pass `proc.mm` of every process whose threads it runs.
   */
  attach(...mms: Array<{ sched: Scheduler } | null>): this {
    for (const mm of mms) if (mm) mm.sched = this;
    return this;
  }

  /** Starts a thread; it runs when the scheduler picks it. */
  spawn(name: string, body: (self: SimThread) => ThreadBody): SimThread {
    const t = new SimThread(name);
    t.body = body(t);
    this.threads.push(t);
    return t;
  }

  /** Sends SIGKILL to `t`: its killable waits end with -EINTR. */
  kill(t: SimThread): void {
    t.fatalSignalPending = true;
    this.note(`SIGKILL -> ${t.name}`);
  }

  /** schedule_work(&work) on system_wq: the kworker runs it later. */
  scheduleWork(work: WorkItem): void {
    this.systemWq.push(work);
    this.note(`queue_work ${work.name}`);
    if (!this.kworker) {
      const q = this.systemWq;
      this.kworker = this.spawn(
        "kworker",
        function* (self) {
          for (;;) {
            const w = q.shift();
            if (!w) {
              yield { ready: () => q.length > 0, why: "work", idle: true };
              continue;
            }
            yield* w.run(self);
          }
        },
      );
    }
  }

  /** Whether `t` can be stepped now. */
  private runnable(t: SimThread): boolean {
    return !t.done && !t.inKernelWait && t.body !== null && (t.blocked === null || t.blocked.ready());
  }

  private pick(options: readonly SimThread[]): SimThread {
    return options.length === 1 ? options[0] : options[this.chooser.choose(options.length)];
  }

  private note(line: string): void {
    if (this.logging) this.log.push(`${this.running.name}: ${line}`);
  }

  /** Runs one step of `t` (up to its next yield). */
  private step(t: SimThread): void {
    if (++this.steps > this.maxSteps) throw new SchedulerError(`step bound ${this.maxSteps} reached`);
    const prev = this.running;
    this.running = t;
    t.blocked = null;
    try {
      const r = t.body!.next();
      if (r.done) t.done = true;
      else t.blocked = r.value ?? null;
      if (this.logging) this.log.push(`${t.name}: ${t.done ? "exits" : t.blocked ? `waits for ${t.blocked.why}` : "yields"}`);
    } finally {
      this.running = prev;
    }
  }

  /** Threads that neither returned nor idle. */
  private unfinished(): SimThread[] {
    return this.threads.filter((t) => !t.done && !(t.blocked?.idle && !t.blocked.ready()));
  }

  private stuckReport(): string {
    return `deadlock: ${this.unfinished().map((t) => `${t.name} waits for ${t.blocked?.why ?? "its kernel call"}`).join(", ")}`;
  }

  /**
   * Runs threads until every spawned thread has returned and the kworker idles with nothing
   * queued. A deadlock (a kworker sleeping on a lock included) or the step bound ends the
   * run with `stuck` set, the state left as it was then.
   */
  run(): RunResult {
    const start = this.steps;
    try {
      for (;;) {
        const options = this.threads.filter((t) => this.runnable(t));
        if (options.length === 0) {
          return { steps: this.steps - start, stuck: this.unfinished().length > 0 ? this.stuckReport() : null };
        }
        this.step(this.pick(options));
      }
    } catch (e) {
      if (e instanceof SchedulerError) return { steps: this.steps - start, stuck: e.message };
      throw e;
    }
  }

  /**
   * Sleeps the running thread inside a synchronous kernel call until `ready()` holds: other
   * threads run (nested) meanwhile, and the chooser decides when the waiter goes on once it
   * can. A killable wait also ends when a fatal signal is pending. Returns true when
   * `ready()` held, false when a fatal signal ended the wait. Throws `SchedulerError` when
   * no thread can run (a deadlock the model cannot resolve).
   */
  waitEvent(ready: () => boolean, killable: boolean, why: string): boolean {
    const me = this.running;
    me.inKernelWait = true;
    this.note(`sleeps for ${why}`);
    try {
      for (;;) {
        const canGo = ready() || (killable && me.fatalSignalPending);
        const others = this.threads.filter((t) => t !== me && this.runnable(t));
        const options = canGo ? [me, ...others] : others;
        if (options.length === 0) throw new SchedulerError(`deadlock: ${me.name} sleeps for ${why} and no thread can run`);
        const t = this.pick(options);
        if (t === me) {
          const ok = ready();
          this.note(ok ? `wakes (${why})` : `wakes killed (${why})`);
          return ok;
        }
        this.step(t);
      }
    } finally {
      me.inKernelWait = false;
    }
  }
}

/** What `exploreSchedules` did. */
export interface ExploreReport {
  /** Schedules run. */
  runs: number;
  /** Whether every schedule was run (false: `maxRuns` stopped the search). */
  complete: boolean;
}

/**
 * Runs `scenario` once per distinct schedule, depth first over the scheduler's decisions,
 * until all are done or `maxRuns` is reached. `scenario` must build a fresh world around a
 * `Scheduler` given the chooser, run it and check it; the schedule of a run is
 * `chooser.schedule` (replay it with `new ReplayChooser(schedule)`).
 */
export function exploreSchedules(scenario: (chooser: ReplayChooser) => void, opts: { maxRuns?: number } = {}): ExploreReport {
  const maxRuns = opts.maxRuns ?? 100_000;
  let prefix: number[] = [];
  for (let runs = 1; ; runs++) {
    const c = new ReplayChooser(prefix);
    scenario(c);
    let i = c.trail.length - 1;
    while (i >= 0 && c.trail[i].choice + 1 >= c.trail[i].of) i--;
    if (i < 0) return { runs, complete: true };
    if (runs >= maxRuns) return { runs, complete: false };
    prefix = [...c.schedule.slice(0, i), c.trail[i].choice + 1];
  }
}
