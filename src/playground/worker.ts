/**
 * The playground's worker: loads the Wasm core, then answers the page's requests
 * (protocol.ts) with the library itself — replayTrace for traces, runMigration and the
 * report renderers for migrations — so the page stays responsive during a long run.
 */
import { TYPE1_PROFILE_NAMES } from "../type1/options";
import { replayTrace } from "../trace";
import { runMigration } from "../migrate/engine";
import { renderHtmlReport } from "../migrate/render-html";
import { renderVerdict } from "../migrate/render-text";
import type { WasmCore } from "../wasm/core";
import { loadPlaygroundCore } from "./core-loader";
import type { ProfileOutput, Reply, Request } from "./protocol";
import { formMeta, scenarioFromForm } from "./scenario-form";

/** The slice of a DedicatedWorkerGlobalScope this file uses (the library builds without DOM types). */
interface WorkerScope {
  postMessage(m: Reply): void;
  onmessage: ((e: { data: Request }) => void) | null;
}
const scope = globalThis as unknown as WorkerScope;

function replayAll(core: WasmCore, text: string, profiles: readonly string[]): ProfileOutput[] {
  return profiles
    .flatMap((name) => TYPE1_PROFILE_NAMES.filter((p) => p === name))
    .map((profile) => {
      try {
        return { profile, output: replayTrace(text, { core, type1: { profile } }) };
      } catch (e) {
        return { profile, output: "", error: String((e as Error)?.stack ?? e) };
      }
    });
}

function migrate(req: Request & { kind: "migrate" }): Reply {
  const built = scenarioFromForm(req.form);
  if ("errors" in built) return { id: req.id, kind: "migrate-error", errors: built.errors };
  let last = 0;
  const run = runMigration(built.scenario, {
    observer: {
      progress(round, fraction) {
        const now = Date.now();
        if (now - last < 100) return;
        last = now;
        scope.postMessage({ id: req.id, kind: "progress", round, fraction });
      },
      roundEnd(r) {
        scope.postMessage({ id: req.id, kind: "progress", round: r.round, fraction: 1 });
      },
    },
  });
  if ("failure" in run) return { id: req.id, kind: "migrate-error", errors: [run.failure.message] };
  const result = run.result;
  return {
    id: req.id,
    kind: "migrate",
    answer: { converged: result.converged, verdict: renderVerdict(result), reportHtml: renderHtmlReport(result) },
  };
}

function answer(core: WasmCore, req: Request): void {
  try {
    if (req.kind === "replay") scope.postMessage({ id: req.id, kind: "replay", outputs: replayAll(core, req.text, req.profiles) });
    else scope.postMessage(migrate(req));
  } catch (err) {
    // The library never throws for bad input; a throw here is a bug worth showing in full.
    const message = String((err as Error)?.stack ?? err);
    scope.postMessage(req.kind === "replay" ? { id: req.id, kind: "replay", outputs: [] } : { id: req.id, kind: "migrate-error", errors: [message] });
  }
}

// The handler is installed at once: a request that arrives while the core loads waits for
// it (in order) instead of being dropped.
const core = loadPlaygroundCore();
scope.onmessage = (e) => {
  const req = e.data;
  core.then((c) => answer(c, req), () => undefined);
};
core.then(
  () => scope.postMessage({ id: -1, kind: "ready", meta: formMeta() }),
  (e: unknown) => scope.postMessage({ id: -1, kind: "fatal", message: `cannot load the Wasm core: ${(e as Error)?.message ?? e}` }),
);
