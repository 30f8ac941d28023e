/**
 * The messages between the playground page (main.ts, DOM only) and its worker (worker.ts,
 * which owns the library and the Wasm core). The model runs in the worker so a migration
 * of several seconds never freezes the page. Plain data only: everything crosses
 * postMessage by structured clone.
 */
// No imports from the library: main.ts builds against the DOM lib and must not pull the
// library's own WebAssembly declarations into its program.

/** One device row of the migration form. An empty `rate` keeps the kind's default workload rate. */
export interface DeviceForm {
  readonly kind: string;
  readonly name: string;
  readonly rate: string;
}

/** The migration controls, every value as typed (also what a shared URL carries). */
export interface ScenarioForm {
  readonly guest: string;
  readonly pageSize: string;
  readonly bandwidth: string;
  readonly downtime: string;
  readonly maxRounds: string;
  readonly profile: string;
  readonly bitmapCopy: string;
  readonly seed: string;
  readonly devices: readonly DeviceForm[];
}

/** What the page needs to build its controls; the worker sends it with `ready`. */
export interface Meta {
  /** type1 profiles, in order (linux-6.1 first). */
  readonly profiles: readonly string[];
  /** Device kind -> one-line description. */
  readonly deviceKinds: Readonly<Record<string, string>>;
  /** Preset line-up -> its summary and the form it fills in. */
  readonly presets: Readonly<Record<string, { readonly summary: string; readonly form: ScenarioForm }>>;
}

/** One replay of a trace under one type1 profile. */
export interface ProfileOutput {
  readonly profile: string;
  /** What the oracle's runner prints, byte for byte as `vfio-sim replay` would. */
  readonly output: string;
  /** Set instead of `output` when the model threw (a bug: bad input never throws). */
  readonly error?: string;
}

/** What the page asks the worker. */
export type Ask =
  | { readonly kind: "replay"; readonly text: string; readonly profiles: readonly string[] }
  | { readonly kind: "migrate"; readonly form: ScenarioForm };

/** Page -> worker: an ask and the `id` that pairs it with its answer. */
export type Request = Ask & { readonly id: number };

/** What a finished migration sends back. */
export interface MigrateAnswer {
  readonly converged: boolean;
  /** renderVerdict's text (verdict, totals, no-lost-page check). */
  readonly verdict: string;
  /** The whole `--report` page (render-html.ts), shown in an iframe. */
  readonly reportHtml: string;
}

/** Worker -> page. */
export type Reply =
  | { readonly id: -1; readonly kind: "ready"; readonly meta: Meta }
  | { readonly id: -1; readonly kind: "fatal"; readonly message: string }
  | { readonly id: number; readonly kind: "replay"; readonly outputs: readonly ProfileOutput[] }
  | { readonly id: number; readonly kind: "progress"; readonly round: number; readonly fraction: number }
  | { readonly id: number; readonly kind: "migrate"; readonly answer: MigrateAnswer }
  /** Bad controls (validateScenario's messages) or a failed model call. */
  | { readonly id: number; readonly kind: "migrate-error"; readonly errors: readonly string[] };
