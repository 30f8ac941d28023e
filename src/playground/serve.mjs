#!/usr/bin/env node
/**
 * `npm run playground:serve [-- --port N]`: serves dist/playground/ on http://127.0.0.1:PORT/
 * (default 8080) for a local look. Static files only; any other static server will do
 * (e.g. `python3 -m http.server -d dist/playground`). The page needs http:, not file:
 * (module workers and fetch()).
 */
import { createServer } from "node:http";
import { readFile } from "node:fs/promises";
import { dirname, extname, join, normalize, resolve, sep } from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = normalize(resolve(dirname(fileURLToPath(import.meta.url)), "..", "..", "dist", "playground") + sep);
const TYPES = { ".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8", ".map": "application/json", ".json": "application/json", ".wasm": "application/wasm", ".md": "text/plain; charset=utf-8" };
const i = process.argv.indexOf("--port");
const port = i > 0 ? Number(process.argv[i + 1]) : 8080;

createServer((req, res) => {
  const path = decodeURIComponent(new URL(req.url ?? "/", "http://x").pathname);
  const file = normalize(join(ROOT, path.endsWith("/") ? path + "index.html" : path));
  if (req.method !== "GET" || !file.startsWith(ROOT)) return void res.writeHead(404).end();
  readFile(file).then(
    (body) => res.writeHead(200, { "content-type": TYPES[extname(file)] ?? "application/octet-stream" }).end(body),
    () => res.writeHead(404).end("not found (run `npm run playground` first?)\n"),
  );
}).listen(port, "127.0.0.1", () => console.log(`vfio-sim playground: http://127.0.0.1:${port}/`));
