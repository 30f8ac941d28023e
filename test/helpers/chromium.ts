/**
 * Debian's `chromium` for the browser tests (Playwright's own downloads are not reachable
 * here). A test without it skips with a warning, except under CI=true, where a missing
 * Chromium must fail (.ci/run installs it).
 */
import { spawnSync } from "node:child_process";

/** The path of a Chromium on PATH, or null. */
export function findChromium(): string | null {
  for (const name of ["chromium", "chromium-browser", "google-chrome"]) {
    const r = spawnSync("sh", ["-c", `command -v ${name}`], { encoding: "utf8" });
    if (r.status === 0 && r.stdout.trim()) return r.stdout.trim();
  }
  return null;
}

/** Whether a browser test runs: Chromium is there, or CI demands it (then its absence fails). Warns once when skipping. */
export function browserTestsRun(what: string): { chromium: string | null; run: boolean } {
  const chromium = findChromium();
  const run = chromium !== null || process.env.CI === "true";
  // eslint-disable-next-line no-console
  if (!run) console.warn(`SKIPPED: ${what}: no \`chromium\` on PATH (apt-get install -y chromium)`);
  return { chromium, run };
}
