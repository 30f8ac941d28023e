/**
 * Line comparisons the page shows next to a replay: where the profiles' answers differ
 * from one another, and whether a profile's answer is the kernel's recorded one.
 * No library imports (main.ts builds against the DOM lib only).
 */

/** How one profile's output compares with a recording of the same trace. */
export interface RecordingMatch {
  /** Same bytes. */
  readonly same: boolean;
  /** 1-based number of the first differing output line; 0 when `same`. */
  readonly firstDiff: number;
  /** Output lines compared (the recording's). */
  readonly lines: number;
}

/** `output` against the recorded `want`. */
export function matchRecording(output: string, want: string): RecordingMatch {
  const w = want.split("\n");
  const lines = want.endsWith("\n") ? w.length - 1 : w.length;
  if (output === want) return { same: true, firstDiff: 0, lines };
  const g = output.split("\n");
  let i = 0;
  while (i < Math.min(g.length, w.length) && g[i] === w[i]) i++;
  return { same: false, firstDiff: i + 1, lines };
}

/**
 * Indices (0-based) of the output lines that are not the same in every output: where the
 * kernels disagree. A missing line counts as different.
 */
export function differingLines(outputs: readonly string[]): Set<number> {
  const split = outputs.map((o) => o.split("\n"));
  const n = Math.max(0, ...split.map((s) => s.length));
  const out = new Set<number>();
  for (let i = 0; i < n; i++) if (split.some((s) => s[i] !== split[0][i])) out.add(i);
  return out;
}
