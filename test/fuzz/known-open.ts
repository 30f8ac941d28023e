/**
 * KNOWN_OPEN: the findings of issue 11 that are still open on this branch. The in-`npm test`
 * fuzz run counts a finding that matches an entry here instead of failing on it.
 *
 * When the fix of a finding is merged, DELETE ITS ENTRY: the bounded run then checks it in
 * full (and fails if the fix is incomplete). When the list is empty, every finding fails
 * the run. `npm run fuzz -- --strict` ignores this list.
 */
import type { Finding } from "./engine";

/** One known-open finding and how to recognise it. */
export interface KnownOpen {
  /** The finding's ID in issue 11. */
  id: string;
  /** One line: what it is. */
  title: string;
  /** Which target(s) it shows up in. */
  targets: readonly string[];
  /** Whether a finding is (most likely) this one. */
  match(f: Finding): boolean;
  /**
   * Whether the episode can go on after it (the world is still a fair test: e.g. a bad
   * mapping or a lost bit), rather than end (accounting drift that later checks would
   * misreport as something else).
   */
  continues: boolean;
}

/**
 * Empty: every finding of issue 11 is fixed or is Linux's own behaviour (partial-effects.ts).
 * An entry looks like
 * `{ id: "F9", continues: true, title: "...", targets: ["iommufd"], match: (f) => f.kind === "slow" && f.op === "map" }`.
 */
export const KNOWN_OPEN: readonly KnownOpen[] = [];

/** The entry a finding of `target` matches, or null. */
export function knownOpenFor(target: string, f: Finding): KnownOpen | null {
  return KNOWN_OPEN.find((k) => k.targets.includes(target) && k.match(f)) ?? null;
}

/**
 * Whether the generator should avoid what is very slow on a known-open defect: F9 (2 TiB
 * IOAS_MAP, minutes), F2 (worlds above 2 GiB: a call on a wrapped pointer can take 10+ s
 * before it throws). Deleting the entry brings those calls back at full rate.
 */
export function avoidKnownHang(id: string): boolean {
  return KNOWN_OPEN.some((k) => k.id === id);
}

