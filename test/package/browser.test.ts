/**
 * Issue 14's acceptance in a browser: an esbuild --platform=browser bundle of a consumer
 * of the packed package runs in headless Chromium (Debian's package, driven by
 * playwright-core), loading the Wasm core through `new URL("./core.wasm",
 * import.meta.url)` and fetch, served by a local HTTP server on 127.0.0.1, both with the
 * right MIME type (compileStreaming) and without it (the arrayBuffer fallback).
 * Skips only when Chromium is absent outside CI; under CI=true a missing Chromium fails.
 */
import { execFileSync } from "node:child_process";
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { extname, join, normalize } from "node:path";
import { chromium as playwright } from "playwright-core";
import { ROOT, consumer, pack } from "./packed";
import { browserTestsRun } from "../helpers/chromium";

// Installs, bundles and starts a browser: slow on a loaded machine, not a timing assertion.
jest.setTimeout(300_000);

const { chromium, run: browserRuns } = browserTestsRun("browser bundle test");
const withBrowser = browserRuns ? test : test.skip;

const APP = `import { init, replayTrace, createVfioProcess, Type1Handle, WasmCore } from "vfio-sim";
import trace from "./basics.trace";
import expected from "./basics.out";
const out = {};
try {
  // Before init() a browser has no core: the error must say what to do.
  try { new WasmCore(); out.before = "loaded"; } catch (e) { out.before = /await init\\(\\)/.test(String(e)) ? "asks for init" : String(e); }
  await init();
  out.replay = replayTrace(trace) === expected;
  const h = Type1Handle.open(createVfioProcess());
  out.open = h.ok;
  const r = h.ok ? h.value.mapDma({ iova: 0n, vaddr: 0n, size: 0n }) : null;
  out.errno = r && !r.ok ? r.errnoName : null;
} catch (e) {
  out.error = String((e && e.stack) || e);
}
window.__result = out;
`;

const MIME: Record<string, string> = { ".html": "text/html", ".js": "text/javascript", ".wasm": "application/wasm" };

describe("an esbuild browser bundle in Chromium", () => {
  const dirs: string[] = [];
  let site = "";
  let server: Server | null = null;
  const requests: string[] = [];

  beforeAll(async () => {
    if (!chromium) return;
    const work = mkdtempSync(join(tmpdir(), "vfio-sim-browser-"));
    dirs.push(work);
    const dir = consumer(pack(work).tarball, "module");
    dirs.push(dir);
    copyFileSync(join(ROOT, "test/conformance/linux-6.1/basics.trace"), join(dir, "basics.trace"));
    copyFileSync(join(ROOT, "test/conformance/linux-6.1/basics.out"), join(dir, "basics.out"));
    writeFileSync(join(dir, "app.js"), APP);
    site = join(dir, "site");
    mkdirSync(site);
    // esbuild fails on any node: import reachable from the entry (there must be none).
    execFileSync(join(ROOT, "node_modules/.bin/esbuild"), ["app.js", "--bundle", "--platform=browser", "--format=esm", "--loader:.trace=text", "--loader:.out=text", "--outfile=site/app.js", "--log-level=warning"], { cwd: dir, encoding: "utf8" });
    // esbuild keeps new URL("./core.wasm", import.meta.url) as written: the core goes beside the bundle.
    copyFileSync(join(dir, "node_modules/vfio-sim/dist/esm/wasm/core.wasm"), join(site, "core.wasm"));
    writeFileSync(join(site, "index.html"), `<!doctype html><meta charset="utf-8"><title>vfio-sim</title><script type="module" src="app.js"></script>`);
    server = createServer((req, res) => {
      // /typed/… serves application/wasm; /plain/… serves the core as octet-stream.
      const url = new URL(req.url ?? "/", "http://localhost");
      const [, mode, ...rest] = url.pathname.split("/");
      const file = normalize(join(site, rest.join("/") || "index.html"));
      requests.push(`${mode}/${rest.join("/")}`);
      if (!file.startsWith(site)) return void res.writeHead(403).end();
      let body: Buffer;
      try {
        body = readFileSync(file);
      } catch {
        return void res.writeHead(404).end();
      }
      const type = extname(file) === ".wasm" && mode === "plain" ? "application/octet-stream" : (MIME[extname(file)] ?? "application/octet-stream");
      res.writeHead(200, { "content-type": type }).end(body);
    });
    await new Promise<void>((resolve) => server!.listen(0, "127.0.0.1", resolve));
  });

  afterAll(async () => {
    await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  withBrowser("loads the core by URL and replays a recorded trace, with and without application/wasm", async () => {
    if (!chromium) throw new Error("CI=true but no chromium on PATH: .ci/run must install Debian's chromium package");
    const port = (server!.address() as AddressInfo).port;
    const browser = await playwright.launch({ executablePath: chromium, args: ["--no-sandbox", "--disable-gpu"] });
    try {
      for (const mode of ["typed", "plain"]) {
        const page = await browser.newPage();
        const errors: string[] = [];
        page.on("pageerror", (e) => errors.push(String(e)));
        await page.goto(`http://127.0.0.1:${port}/${mode}/index.html`);
        await page.waitForFunction(() => (globalThis as unknown as { __result?: unknown }).__result !== undefined, undefined, { timeout: 120_000 });
        const result = await page.evaluate(() => (globalThis as unknown as { __result: unknown }).__result);
        expect([mode, result, errors]).toEqual([mode, { before: "asks for init", replay: true, open: true, errno: "EINVAL" }, []]);
        expect(requests).toContain(`${mode}/core.wasm`);
        await page.close();
      }
    } finally {
      await browser.close();
    }
  });
});
