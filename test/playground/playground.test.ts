/**
 * The playground in headless Chromium (Debian's `chromium` package, driven by
 * playwright-core; browser downloads are not reachable, so no bundled browser): build the
 * page with src/playground/build.mjs, serve it on 127.0.0.1, replay recorded traces and
 * compare each profile's answer with the kernel's `.out`, follow a shared link, run a
 * migration and check the report's charts and verdict.
 * Skips only when Chromium is absent outside CI; under CI=true a missing Chromium fails.
 */
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium as playwright, type Browser, type Page } from "playwright-core";
import { serveDir } from "./static-server";
import { browserTestsRun } from "../helpers/chromium";

const ROOT = join(__dirname, "..", "..");
const CONFORMANCE = join(ROOT, "test", "conformance");

const { chromium: chromiumPath, run: browserRuns } = browserTestsRun("playground test");
const describeBrowser = browserRuns ? describe : describe.skip;

const read = (rel: string): string => readFileSync(join(CONFORMANCE, rel), "utf8");

describeBrowser("playground (headless Chromium)", () => {
  let dir = "";
  let server: { url: string; close: () => Promise<void> } | null = null;
  let browser: Browser | null = null;
  let page: Page;
  const pageErrors: string[] = [];

  beforeAll(async () => {
    if (!chromiumPath) throw new Error("CI=true but no chromium on PATH: .ci/run must install Debian's chromium package");
    dir = mkdtempSync(join(tmpdir(), "vfio-sim-playground-"));
    // Always build from the current sources (esbuild: about a second).
    const b = spawnSync(process.execPath, [join(ROOT, "src", "playground", "build.mjs"), "--outdir", join(dir, "site")], { encoding: "utf8" });
    if (b.status !== 0) throw new Error(`playground build failed:\n${b.stdout}${b.stderr}`);
    server = await serveDir(join(dir, "site"));
    browser = await playwright.launch({
      executablePath: chromiumPath,
      args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run", "--disable-background-networking", "--disable-component-update"],
    });
    page = await browser.newPage();
    page.on("pageerror", (e) => pageErrors.push(String(e)));
    await page.goto(server.url);
    await page.waitForSelector("html[data-ready]", { timeout: 60_000 });
    expect(await page.getAttribute("html", "data-ready")).toBe("true");
  }, 120_000);

  afterAll(async () => {
    await browser?.close();
    await server?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  afterEach(() => expect(pageErrors).toEqual([]));

  /** Waits for the replay the last action started, then returns each profile's output. */
  async function replayOutputs(): Promise<Record<string, string>> {
    await page.waitForSelector("#trace-panel[data-state=done]", { timeout: 60_000 });
    return page.$$eval("#replay-out [data-profile]", (cols) =>
      Object.fromEntries(cols.map((c) => [c.getAttribute("data-profile") ?? "", c.querySelector("pre")?.textContent ?? ""])),
    );
  }

  /** Marks the replay shown as old, so the next wait sees the answer to the next action. */
  async function markStale(): Promise<void> {
    await page.$eval("#trace-panel", (e) => e.setAttribute("data-state", "stale"));
  }

  async function pickExample(name: string): Promise<Record<string, string>> {
    await markStale();
    await page.selectOption("#example", name);
    return replayOutputs();
  }

  test("shows the three profiles and the shipped examples", async () => {
    const profiles = await page.$$eval("#profiles input", (xs) => xs.map((x) => x.getAttribute("value")));
    expect(profiles).toEqual(["linux-6.1", "linux-6.12", "mainline"]);
    const examples = await page.$$eval("#example option", (xs) => xs.map((x) => x.getAttribute("value")).filter((v) => v));
    expect(examples).toEqual(expect.arrayContaining(["basics", "smoke-mock", "edu-cdev"]));
  });

  test("an example replays to the kernel's recorded bytes on each recorded kernel", async () => {
    // basics: the 6.1 and 6.12 kernels answer differently (3 lines); both recorded.
    const out = await pickExample("basics");
    expect(out["linux-6.1"]).toBe(read("linux-6.1/basics.out"));
    expect(out["linux-6.12"]).toBe(read("linux-6.12/basics.out"));
    expect(out["linux-6.1"]).not.toBe(out["linux-6.12"]);
    expect(await page.$$eval("#replay-out [data-recording]", (xs) => xs.map((x) => x.getAttribute("data-recording")))).toEqual(["same", "same"]);
    expect(await page.$$eval("#replay-out .line.differs", (xs) => xs.length)).toBeGreaterThan(0);
  });

  test("every shipped example matches every recording it ships with", async () => {
    const names = await page.$$eval("#example option", (xs) => xs.map((x) => x.getAttribute("value") ?? "").filter((v) => v));
    for (const name of names) {
      await pickExample(name);
      const badges = await page.$$eval("#replay-out [data-recording]", (xs) => xs.map((x) => x.getAttribute("data-recording")));
      expect({ name, badges }).toEqual({ name, badges: expect.arrayContaining(["same"]) });
      expect({ name, badges }).toEqual({ name, badges: badges.map(() => "same") });
    }
  }, 240_000);

  test("iommufd worlds replay in the page (mock and edu)", async () => {
    expect((await pickExample("smoke-mock"))["linux-6.12"]).toBe(read("linux-6.12-iommufd/smoke-mock.out"));
    expect((await pickExample("edu-cdev"))["linux-6.12"]).toBe(read("linux-6.12-iommufd/edu-cdev.out"));
  });

  test("an edited trace (not a shipped example) replays per profile", async () => {
    // partial-effects is recorded on 6.1 (new/) and 6.12 and is not among the examples.
    const trace = read("linux-6.12/partial-effects.trace");
    expect(read("new/partial-effects.trace")).toBe(trace);
    await markStale();
    await page.fill("#trace", trace);
    const out = await replayOutputs();
    expect(out["linux-6.1"]).toBe(read("new/partial-effects.out"));
    expect(out["linux-6.12"]).toBe(read("linux-6.12/partial-effects.out"));
    expect(out.mainline.length).toBeGreaterThan(0);
  });

  test("a trace travels through the URL", async () => {
    const trace = read("linux-6.1/hunt-holes.trace");
    await markStale();
    await page.fill("#trace", trace);
    await replayOutputs();
    await page.click("#share-trace");
    await page.waitForFunction("document.getElementById('share-trace-url').value.includes('#trace=')");
    const link = await page.inputValue("#share-trace-url");
    expect(link.startsWith(server!.url)).toBe(true);
    const other = await browser!.newPage();
    try {
      other.on("pageerror", (e) => pageErrors.push(String(e)));
      await other.goto(link);
      await other.waitForSelector("#trace-panel[data-state=done]", { timeout: 60_000 });
      expect(await other.inputValue("#trace")).toBe(trace);
      const pre = await other.textContent('#replay-out [data-profile="linux-6.1"] pre');
      expect(pre).toBe(read("linux-6.1/hunt-holes.out"));
    } finally {
      await other.close();
    }
  });

  test("a migration runs in the page: verdict shown, report charts drawn", async () => {
    await page.selectOption("#m-preset", "all-kinds");
    expect(await page.$$eval("#devices tbody tr", (xs) => xs.length)).toBe(4);
    await page.fill("#m-guest", "2G");
    await page.fill("#m-seed", "7");
    await page.click("#migrate");
    await page.waitForSelector("#migrate-panel[data-state=done], #migrate-panel[data-state=error]", { timeout: 240_000 });
    expect(await page.textContent("#migrate-errors")).toBe("");
    expect(await page.getAttribute("#migrate-panel", "data-state")).toBe("done");
    const verdict = (await page.textContent("#verdict")) ?? "";
    // The plain type1 device (hba0) reports all RAM every round: this line-up cannot converge.
    expect(await page.textContent("#migrate-status")).toBe("did not converge");
    expect(await page.getAttribute("#verdict", "class")).toBe("bad");
    expect(verdict).toMatch(/^Did not converge/i);
    expect(verdict).toContain("No-lost-page check: OK");
    const report = page.frameLocator("#report");
    await report.locator("html[data-charts]").waitFor({ timeout: 30_000 });
    expect(await report.locator("html").getAttribute("data-charts")).toBe("rendered");
    expect(await report.locator("#errors").textContent()).toBe("");
    // The report is the library's own page for this run: it carries the same verdict.
    expect(await report.locator("pre.wrap").first().textContent()).toBe(verdict);
    const charts = report.locator("svg.chart");
    expect(await charts.count()).toBeGreaterThanOrEqual(2);
    for (let i = 0; i < (await charts.count()); i++) expect(await charts.nth(i).locator("rect.bar").count()).toBeGreaterThan(0);
    expect(await page.getAttribute("#report-link", "href")).toMatch(/^blob:/);
  }, 300_000);

  test("a long migration can be stopped; the page keeps working", async () => {
    await page.selectOption("#m-preset", "default");
    await page.fill("#m-guest", "512G");
    await page.click("#migrate");
    await page.waitForSelector("#migrate-panel[data-state=running]");
    await page.waitForFunction("document.getElementById('migrate-status').textContent.startsWith('running')");
    await page.click("#stop");
    expect(await page.getAttribute("#migrate-panel", "data-state")).toBe("idle");
    expect(await page.textContent("#migrate-status")).toBe("stopped");
    // The new worker answers: a replay right after the stop.
    const out = await pickExample("hunt-ro-vma");
    expect(out["linux-6.1"]).toBe(read("linux-6.1/hunt-ro-vma.out"));
  });

  test("the migration controls travel through the URL", async () => {
    await page.selectOption("#m-preset", "hw-type1");
    await page.fill("#m-guest", "3G");
    await page.selectOption("#m-profile", "linux-6.12");
    await page.click("#share-scenario");
    await page.waitForFunction("document.getElementById('share-scenario-url').value.includes('#scenario=')");
    const other = await browser!.newPage();
    try {
      other.on("pageerror", (e) => pageErrors.push(String(e)));
      await other.goto(await page.inputValue("#share-scenario-url"));
      await other.waitForSelector("html[data-ready=true]", { timeout: 60_000 });
      await other.waitForFunction("document.getElementById('m-guest').value === '3G'");
      expect(await other.inputValue("#m-profile")).toBe("linux-6.12");
      expect(await other.$$eval("#devices tbody tr .d-kind", (xs) => xs.map((x) => (x as unknown as { value: string }).value))).toEqual(["hw-type1", "emulated"]);
    } finally {
      await other.close();
    }
  });

  test("bad controls are reported, nothing runs", async () => {
    await page.selectOption("#m-preset", "default");
    await page.fill("#m-guest", "lots");
    await page.click("#migrate");
    await page.waitForSelector("#migrate-panel[data-state=error]", { timeout: 30_000 });
    expect(await page.textContent("#migrate-errors")).toBe("bad guest size: 'lots'");
  });
});
