/**
 * The --report page, opened in headless Chromium (Debian's `chromium` package): the page's
 * own script must draw both charts. Skips only when Chromium is absent outside CI; under
 * CI=true a missing Chromium fails.
 */
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { CliIo } from "../../src/cli/command";
import { runMigrateCommand } from "../../src/cli/commands/migrate";

function findChromium(): string | null {
  for (const name of ["chromium", "chromium-browser", "google-chrome"]) {
    const r = spawnSync("sh", ["-c", `command -v ${name}`], { encoding: "utf8" });
    if (r.status === 0 && r.stdout.trim()) return r.stdout.trim();
  }
  return null;
}

const chromium = findChromium();
const underCI = process.env.CI === "true";
if (!chromium && !underCI) {
  // eslint-disable-next-line no-console
  console.warn("SKIPPED: headless-Chromium report test: no `chromium` on PATH (apt-get install -y chromium)");
}
const withBrowser = chromium || underCI ? test : test.skip;

const io = (): CliIo & { text: string } => {
  const o = { text: "", isTTY: false, out: (s: string) => void (o.text += s), err: (s: string) => void (o.text += s) };
  return o;
};

describe("--report FILE.html", () => {
  const dir = mkdtempSync(join(tmpdir(), "vfio-sim-report-"));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  test("is one self-contained file with the run embedded", () => {
    const file = join(dir, "static.html");
    expect(runMigrateCommand(["--guest", "8G", "--report", file], io())).toBe(0);
    const html = readFileSync(file, "utf8");
    expect(html).not.toMatch(/<link|\ssrc=|url\(|@import/i);
    expect(html.replace(/http:\/\/www\.w3\.org\/2000\/svg/g, "")).not.toMatch(/https?:\/\//);
    expect(html).toContain('id="run-data"');
    expect(html).toMatch(/No-lost-page check: OK/);
  });

  withBrowser("renders both charts in headless Chromium", () => {
    if (!chromium) throw new Error("CI=true but no chromium on PATH: .ci/run must install Debian's chromium package");
    const file = join(dir, "report.html");
    const out = io();
    expect(runMigrateCommand(["--guest", "8G", "--scenario", "all-kinds", "--report", file], out)).toBe(0);
    const profile = mkdtempSync(join(dir, "profile-"));
    const r = spawnSync(
      chromium,
      [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        `--user-data-dir=${profile}`,
        "--virtual-time-budget=5000",
        "--dump-dom",
        `file://${file}`,
      ],
      { encoding: "utf8", timeout: 90_000 },
    );
    expect(r.error).toBeUndefined();
    const dom = r.stdout;
    expect(dom).toMatch(/<html[^>]*data-charts="rendered"/);
    expect(dom).toMatch(/<p id="errors" class="bad"><\/p>/);
    const charts = [...dom.matchAll(/<svg class="chart"[^>]*data-bars="(\d+)"/g)].map((m) => Number(m[1]));
    expect(charts.length).toBe(2);
    // The run's own numbers decide how many bars each chart must have.
    const rounds = Number(/<pre>[\s\S]*?\n\s+(\d+)\s+stop-and-copy/.exec(dom)?.[1]);
    expect(rounds).toBeGreaterThan(1);
    expect(charts[0]).toBe(rounds * 2); // written vs reported, per round
    expect(charts[1]).toBe(rounds * 4); // harvest time stacked over the four devices
    expect((dom.match(/<rect [^>]*class="bar"/g) ?? []).length).toBe(charts[0] + charts[1]);
    expect(dom).toContain("Dirty pages per round");
    expect(dom).toContain("Harvest wall time per round");
  });
});
