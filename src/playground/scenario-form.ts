/**
 * The playground's migration controls as plain strings (what the form holds, what the URL
 * carries) and their translation into a Scenario, with the same units and checks as
 * `vfio-sim migrate` (units.ts, validateScenario).
 */
import type { PackVariant } from "../bitmap";
import { TYPE1_PROFILE_NAMES, type Type1Profile } from "../type1/options";
import { PRESETS, DEVICE_KINDS, defaultScenario, device, validateScenario, type DeviceKind, type DeviceSpec, type Scenario } from "../migrate/scenario";
import { parseDuration, parseRate, parseSize } from "../migrate/units";
import type { Meta, ScenarioForm } from "./protocol";

export type { DeviceForm, ScenarioForm } from "./protocol";

/** The controls of a preset line-up with a guest small enough to run in a few seconds. */
export function presetForm(preset: string): ScenarioForm {
  const s = defaultScenario(preset in PRESETS ? preset : "default");
  return {
    guest: "8G",
    pageSize: "4K",
    bandwidth: "10Gbit",
    downtime: "300ms",
    maxRounds: String(s.maxRounds),
    profile: "linux-6.1",
    bitmapCopy: s.bitmapCopy,
    seed: String(s.seed),
    devices: s.devices.map((d) => ({ kind: d.kind, name: d.name, rate: "" })),
  };
}

/**
 * Default workloads are sized for the 64 GiB default guest: like the CLI, shrink what the
 * user did not set so a small guest still runs (working set at most half the guest, in
 * 2 MiB chunks; hot set and pinned rings inside it).
 */
function fitToGuest(d: DeviceSpec, guestBytes: number): DeviceSpec {
  const w = { ...d.workload };
  if (w.workingSet > guestBytes / 2) w.workingSet = Math.max(4096, Math.floor(guestBytes / 2 / 2 ** 21) * 2 ** 21);
  if (w.hotSet > w.workingSet) w.hotSet = w.workingSet;
  const pinned = d.pinned > w.hotSet ? Math.floor(w.hotSet / 4096) * 4096 : d.pinned;
  return { ...d, workload: w, pinned };
}

/** The controls' choices and the presets' forms, for the page. */
export function formMeta(): Meta {
  const presets: Record<string, { summary: string; form: ScenarioForm }> = {};
  for (const [name, p] of Object.entries(PRESETS)) presets[name] = { summary: p.summary, form: presetForm(name) };
  return { profiles: [...TYPE1_PROFILE_NAMES], deviceKinds: { ...DEVICE_KINDS }, presets };
}

/** The scenario the controls describe, or every problem with them (one message each). */
export function scenarioFromForm(f: ScenarioForm): { scenario: Scenario } | { errors: string[] } {
  const errors: string[] = [];
  const want = <T>(v: T | null, what: string, text: string, fallback: T): T => {
    if (v === null) errors.push(`bad ${what}: '${text}'`);
    return v ?? fallback;
  };
  const guestBytes = want(parseSize(f.guest), "guest size", f.guest, 0);
  const devices: DeviceSpec[] = [];
  f.devices.forEach((d, i) => {
    if (!(d.kind in DEVICE_KINDS)) {
      errors.push(`device ${i + 1}: unknown kind '${d.kind}' (one of: ${Object.keys(DEVICE_KINDS).join(", ")})`);
      return;
    }
    const name = d.name.trim() || `dev${i}`;
    if (!/^[A-Za-z0-9_.-]{1,32}$/.test(name)) errors.push(`bad device name '${name}'`);
    const over = d.rate.trim() === "" ? {} : { rate: want(parseRate(d.rate), `${name} rate`, d.rate, 0) };
    devices.push(fitToGuest(device(d.kind as DeviceKind, name, over), guestBytes));
  });
  const profile = TYPE1_PROFILE_NAMES.find((p) => p === f.profile);
  if (profile === undefined) errors.push(`unknown profile '${f.profile}' (${TYPE1_PROFILE_NAMES.join(", ")})`);
  const copies: readonly string[] = ["byte", "word", "simd"];
  if (!copies.includes(f.bitmapCopy)) errors.push(`bad bitmap copy '${f.bitmapCopy}' (byte, word or simd)`);
  const int = (t: string): number | null => (/^\s*\d+\s*$/.test(t) ? Number(t) : null);
  const scenario: Scenario = {
    guestBytes,
    mappingPageSize: want(parseSize(f.pageSize), "page size", f.pageSize, 4096),
    devices,
    bandwidth: want(parseRate(f.bandwidth), "bandwidth", f.bandwidth, 1),
    downtimeLimit: want(parseDuration(f.downtime), "downtime", f.downtime, 1),
    stopLatency: 0.01,
    maxRounds: want(int(f.maxRounds), "max rounds", f.maxRounds, 1),
    bitmapCopy: f.bitmapCopy as PackVariant,
    type1Profile: (profile ?? "linux-6.1") as Type1Profile,
    seed: want(int(f.seed), "seed", f.seed, 0),
  };
  // Only a well-formed scenario is worth validating: a bad number would add a second message.
  if (errors.length > 0) return { errors };
  const invalid = validateScenario(scenario);
  return invalid.length > 0 ? { errors: invalid } : { scenario };
}
