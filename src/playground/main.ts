/**
 * The playground page: DOM only. The library runs in worker.ts; this file builds the
 * controls from what the worker reports (protocol.ts), sends requests and shows answers.
 *
 * Test hooks (test/playground/playground.test.ts): `<html data-ready>` is `true` once the
 * core is loaded (`error` if it cannot be); `data-state` on #trace-panel and
 * #migrate-panel is `idle`, `running`, `done` or `error`; each profile's output is the
 * textContent of `#replay-out [data-profile=NAME] pre`; the report is #report's srcdoc.
 */
import { differingLines, matchRecording } from "./compare";
import type { Ask, DeviceForm, Meta, ProfileOutput, Reply, Request, ScenarioForm } from "./protocol";
import { decodeHash, encodeHash } from "./share";

/** One shipped example (examples.json, written by build.mjs from test/conformance/). */
interface Example {
  readonly name: string;
  readonly title: string;
  readonly trace: string;
  /** Kernel profile -> the oracle's recorded output of `trace` on that kernel. */
  readonly recordings: Readonly<Record<string, string>>;
}

const $ = <T extends HTMLElement>(id: string): T => {
  const e = document.getElementById(id);
  if (!e) throw new Error(`playground: #${id} missing`);
  return e as T;
};
const h = <K extends keyof HTMLElementTagNameMap>(tag: K, attrs: Record<string, string> = {}, text?: string): HTMLElementTagNameMap[K] => {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  if (text !== undefined) e.textContent = text;
  return e;
};

let worker = startWorker();
let nextId = 1;
const pending = new Map<number, (r: Reply) => void>();
let meta: Meta | null = null;
let examples: Example[] = [];
/** The recordings of the trace in the editor, while it is an unedited example. */
let recordings: Readonly<Record<string, string>> = {};

function send(req: Ask, onReply: (r: Reply) => void): number {
  const id = nextId++;
  pending.set(id, onReply);
  const msg: Request = { ...req, id };
  worker.postMessage(msg);
  return id;
}

// ---- trace replay -------------------------------------------------------------------

let replayTimer = 0;
let replayRun = 0;

function selectedProfiles(): string[] {
  return [...document.querySelectorAll<HTMLInputElement>("#profiles input:checked")].map((i) => i.value);
}

function showOutputs(outputs: readonly ProfileOutput[]): void {
  const host = $("replay-out");
  host.replaceChildren();
  const differs = differingLines(outputs.map((o) => o.output));
  for (const o of outputs) {
    const col = h("div", { class: "profile", "data-profile": o.profile });
    const title = h("h3", {}, o.profile + " ");
    const want = recordings[o.profile];
    let mismatchLine = 0;
    if (o.error) {
      title.append(h("span", { class: "badge differs" }, "model error"));
    } else if (want !== undefined) {
      const m = matchRecording(o.output, want);
      mismatchLine = m.firstDiff;
      title.append(
        m.same
          ? h("span", { class: "badge same", "data-recording": "same" }, `= kernel recording (${m.lines} lines)`)
          : h("span", { class: "badge differs", "data-recording": "differs" }, `differs from the kernel recording at line ${m.firstDiff}`),
      );
    } else {
      title.append(h("span", { class: "badge" }, "no recording"));
    }
    col.append(title);
    const pre = h("pre");
    if (o.error) pre.append(h("span", { class: "errors" }, o.error));
    const lines = o.output.split("\n");
    lines.forEach((line, i) => {
      if (i === lines.length - 1 && line === "") return;
      const cls = ["line"];
      if (differs.has(i)) cls.push("differs");
      if (i + 1 === mismatchLine) cls.push("mismatch");
      pre.append(h("span", { class: cls.join(" ") }, line + (i < lines.length - 1 ? "\n" : "")));
    });
    col.append(pre);
    host.append(col);
  }
  const nDiff = outputs.length > 1 ? differs.size : 0;
  $("replay-status").textContent =
    outputs.length === 0 ? "Pick at least one profile." : nDiff ? `The profiles disagree on ${nDiff} line(s) (highlighted).` : outputs.length > 1 ? "Every profile gives the same answers." : "";
}

function replayNow(): void {
  window.clearTimeout(replayTimer);
  if (!meta) return;
  const panel = $("trace-panel");
  panel.dataset.state = "running";
  const run = ++replayRun;
  send({ kind: "replay", text: $<HTMLTextAreaElement>("trace").value, profiles: selectedProfiles() }, (r) => {
    if (run !== replayRun) return; // a newer edit already asked again
    if (r.kind !== "replay") return;
    showOutputs(r.outputs);
    panel.dataset.state = r.outputs.some((o) => o.error) ? "error" : "done";
  });
}

function loadExample(name: string): void {
  const ex = examples.find((e) => e.name === name);
  if (!ex) return;
  $<HTMLTextAreaElement>("trace").value = ex.trace;
  recordings = ex.recordings;
  const rec = Object.keys(ex.recordings);
  $("example-note").textContent = ex.title + (rec.length ? ` — recorded on ${rec.join(", ")}` : "");
  replayNow();
}

// ---- migration ----------------------------------------------------------------------

const FIELDS = ["guest", "pageSize", "bandwidth", "downtime", "maxRounds", "profile", "bitmapCopy", "seed"] as const;

function addDeviceRow(d: DeviceForm): void {
  if (!meta) return;
  const tr = h("tr");
  const name = h("input", { type: "text", class: "d-name", size: "8", "aria-label": "device name" });
  name.value = d.name;
  const kind = h("select", { class: "d-kind", "aria-label": "device kind" });
  for (const [k, desc] of Object.entries(meta.deviceKinds)) kind.append(h("option", { value: k, title: desc }, k));
  kind.value = d.kind;
  const rate = h("input", { type: "text", class: "d-rate", size: "12", placeholder: "e.g. 800MB/s", "aria-label": "DMA rate" });
  rate.value = d.rate;
  const del = h("button", { type: "button" }, "remove");
  del.addEventListener("click", () => tr.remove());
  for (const c of [name, kind, rate, del]) {
    const td = h("td");
    td.append(c);
    tr.append(td);
  }
  $("devices").querySelector("tbody")!.append(tr);
}

function fillForm(f: ScenarioForm): void {
  for (const k of FIELDS) ($(`m-${k}`) as HTMLInputElement | HTMLSelectElement).value = f[k];
  $("devices").querySelector("tbody")!.replaceChildren();
  f.devices.forEach(addDeviceRow);
}

function readForm(): ScenarioForm {
  const v = (k: (typeof FIELDS)[number]): string => ($(`m-${k}`) as HTMLInputElement | HTMLSelectElement).value;
  const devices = [...$("devices").querySelectorAll("tbody tr")].map((tr) => ({
    name: tr.querySelector<HTMLInputElement>(".d-name")!.value,
    kind: tr.querySelector<HTMLSelectElement>(".d-kind")!.value,
    rate: tr.querySelector<HTMLInputElement>(".d-rate")!.value,
  }));
  return {
    guest: v("guest"),
    pageSize: v("pageSize"),
    bandwidth: v("bandwidth"),
    downtime: v("downtime"),
    maxRounds: v("maxRounds"),
    profile: v("profile"),
    bitmapCopy: v("bitmapCopy"),
    seed: v("seed"),
    devices,
  };
}

/** Stops a running migration: the worker is replaced, its pending answers dropped. */
function stopMigration(): void {
  worker.terminate();
  pending.clear();
  worker = startWorker();
  $<HTMLButtonElement>("migrate").disabled = false;
  $<HTMLButtonElement>("stop").hidden = true;
  $<HTMLProgressElement>("migrate-progress").hidden = true;
  $("migrate-status").textContent = "stopped";
  $("migrate-panel").dataset.state = "idle";
  // A replay that was waiting on the old worker is asked again.
  if ($("trace-panel").dataset.state === "running") replayNow();
}

function runMigrationNow(): void {
  const panel = $("migrate-panel");
  if (panel.dataset.state === "running") return;
  panel.dataset.state = "running";
  const button = $<HTMLButtonElement>("migrate");
  const progress = $<HTMLProgressElement>("migrate-progress");
  const verdict = $("verdict");
  const report = $<HTMLIFrameElement>("report");
  button.disabled = true;
  $<HTMLButtonElement>("stop").hidden = false;
  progress.hidden = false;
  progress.value = 0;
  $("migrate-errors").textContent = "";
  $("migrate-status").textContent = "running round 1…";
  send({ kind: "migrate", form: readForm() }, (r) => {
    if (r.kind === "progress") {
      progress.value = r.fraction;
      $("migrate-status").textContent = `running round ${r.round}…`;
      return;
    }
    button.disabled = false;
    $<HTMLButtonElement>("stop").hidden = true;
    progress.hidden = true;
    if (r.kind === "migrate-error") {
      $("migrate-status").textContent = "";
      $("migrate-errors").textContent = r.errors.join("\n");
      panel.dataset.state = "error";
      return;
    }
    if (r.kind !== "migrate") return;
    $("migrate-status").textContent = r.answer.converged ? "converged" : "did not converge";
    verdict.textContent = r.answer.verdict;
    verdict.className = r.answer.converged ? "ok" : "bad";
    verdict.hidden = false;
    report.hidden = false;
    report.onload = () => {
      const doc = report.contentDocument;
      if (doc) report.style.height = `${doc.documentElement.scrollHeight + 24}px`;
      panel.dataset.state = "done";
    };
    report.srcdoc = r.answer.reportHtml;
    const link = $<HTMLAnchorElement>("report-link");
    if (link.href.startsWith("blob:")) URL.revokeObjectURL(link.href);
    link.href = URL.createObjectURL(new Blob([r.answer.reportHtml], { type: "text/html" }));
    link.hidden = false;
  });
}

// ---- sharing ------------------------------------------------------------------------

async function share(part: "trace" | "scenario"): Promise<void> {
  const hash = await encodeHash(part === "trace" ? { trace: $<HTMLTextAreaElement>("trace").value } : { scenario: JSON.stringify(readForm()) });
  history.replaceState(null, "", hash);
  const url = location.href;
  const box = $<HTMLInputElement>(`share-${part}-url`);
  box.value = url;
  box.select();
  await navigator.clipboard?.writeText(url).catch(() => undefined);
}

async function applyHash(): Promise<void> {
  const s = await decodeHash(location.hash);
  if (s.scenario !== undefined) {
    try {
      const f = JSON.parse(s.scenario) as ScenarioForm;
      if (f && Array.isArray(f.devices)) fillForm(f);
    } catch {
      $("migrate-errors").textContent = "The link's scenario could not be read.";
    }
  }
  if (s.trace !== undefined) {
    $<HTMLSelectElement>("example").value = "";
    $<HTMLTextAreaElement>("trace").value = s.trace;
    // A shared trace may be a recorded example: keep its recordings when the text is one.
    recordings = examples.find((e) => e.trace === s.trace)?.recordings ?? {};
    $("example-note").textContent = "Trace from the link.";
    replayNow();
  }
}

// ---- start-up -----------------------------------------------------------------------

function setUp(m: Meta): void {
  meta = m;
  const profiles = $("profiles");
  for (const p of m.profiles) {
    const label = h("label");
    const box = h("input", { type: "checkbox", value: p });
    box.checked = true;
    box.addEventListener("change", replayNow);
    label.append(box, ` ${p} `);
    profiles.append(label);
  }
  const preset = $<HTMLSelectElement>("m-preset");
  for (const [name, p] of Object.entries(m.presets)) preset.append(h("option", { value: name, title: p.summary }, name));
  const presetNote = (): void => void ($("m-preset-note").textContent = `Preset ${preset.value}: ${m.presets[preset.value]?.summary ?? ""}.`);
  preset.addEventListener("change", () => {
    fillForm(m.presets[preset.value].form);
    presetNote();
  });
  presetNote();
  const prof = $<HTMLSelectElement>("m-profile");
  for (const p of m.profiles) prof.append(h("option", { value: p }, p));
  fillForm(m.presets.default.form);

  $("replay").addEventListener("click", replayNow);
  $("trace").addEventListener("input", () => {
    recordings = {};
    $<HTMLSelectElement>("example").value = "";
    $("example-note").textContent = "Edited.";
    window.clearTimeout(replayTimer);
    replayTimer = window.setTimeout(replayNow, 400);
  });
  $("add-device").addEventListener("click", () => addDeviceRow({ kind: "iommufd", name: `dev${$("devices").querySelectorAll("tbody tr").length}`, rate: "" }));
  $("migrate").addEventListener("click", runMigrationNow);
  $("stop").addEventListener("click", stopMigration);
  $("share-trace").addEventListener("click", () => void share("trace"));
  $("share-scenario").addEventListener("click", () => void share("scenario"));
  window.addEventListener("hashchange", () => void applyHash());
}

async function loadExamples(): Promise<void> {
  const select = $<HTMLSelectElement>("example");
  select.append(h("option", { value: "" }, "(your own trace)"));
  try {
    const res = await fetch(new URL("./examples.json", import.meta.url));
    examples = (await res.json()) as Example[];
  } catch {
    examples = [];
  }
  for (const e of examples) select.append(h("option", { value: e.name }, `${e.name} — ${e.title}`));
  select.addEventListener("change", () => loadExample(select.value));
}

function onReply(e: MessageEvent<Reply>): void {
  const r = e.data;
  if (r.kind === "ready") {
    if (meta) return; // a restarted worker: the page is set up already
    setUp(r.meta);
    void loadExamples().then(async () => {
      $("status").textContent = "Ready.";
      document.documentElement.dataset.ready = "true";
      if (location.hash.length > 1) await applyHash();
      else if (examples.length) {
        $<HTMLSelectElement>("example").value = examples[0].name;
        loadExample(examples[0].name);
      }
    });
    return;
  }
  if (r.kind === "fatal") {
    $("status").textContent = r.message;
    $("status").classList.add("error");
    document.documentElement.dataset.ready = "error";
    return;
  }
  const done = pending.get(r.id);
  if (r.kind !== "progress") pending.delete(r.id);
  done?.(r);
}

/** A fresh worker (the page's only way to stop a run: workers cannot be interrupted). */
function startWorker(): Worker {
  const w = new Worker(new URL("./worker.js", import.meta.url), { type: "module" });
  w.onmessage = onReply;
  w.onerror = (e) => {
    $("status").textContent = `The worker failed: ${e.message}`;
    $("status").classList.add("error");
    document.documentElement.dataset.ready = "error";
  };
  return w;
}
