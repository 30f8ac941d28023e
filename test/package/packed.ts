/**
 * The package as a user gets it: `npm pack` of the built tree (dist/ must be current:
 * `npm ci` and `npm run build` make it), installed offline into a fresh consumer project
 * in a temp dir. Shared by the consumer tests of this folder.
 */
import { execFileSync, spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

export const ROOT = join(__dirname, "../..");
export const NPM = process.platform === "win32" ? "npm.cmd" : "npm";

/** What `npm pack --json` says about one tarball. */
export interface Packed {
  tarball: string;
  files: string[];
}

/** Packs the project into `dir` (scripts off: packing must not rebuild). */
export function pack(dir: string): Packed {
  const out = execFileSync(NPM, ["pack", "--ignore-scripts", "--json", "--pack-destination", dir], { cwd: ROOT, encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
  const info = JSON.parse(out) as Array<{ filename: string; files: Array<{ path: string }> }>;
  return { tarball: join(dir, info[0].filename), files: info[0].files.map((f) => f.path) };
}

/**
 * A consumer project in a new temp dir with the tarball installed. The package has no
 * dependencies, so an offline install works; if npm still refuses, the tarball is
 * unpacked into node_modules/vfio-sim, which is what the install does.
 */
export function consumer(tarball: string, type: "module" | "commonjs"): string {
  const dir = mkdtempSync(join(tmpdir(), `vfio-sim-consumer-${type}-`));
  writeFileSync(join(dir, "package.json"), JSON.stringify({ name: "consumer", version: "1.0.0", private: true, type }));
  const r = spawnSync(NPM, ["install", "--offline", "--no-audit", "--no-fund", "--ignore-scripts", tarball], { cwd: dir, encoding: "utf8" });
  if (r.status !== 0) {
    const target = join(dir, "node_modules", "vfio-sim");
    mkdirSync(target, { recursive: true });
    execFileSync("tar", ["-xzf", tarball, "-C", target, "--strip-components=1"]);
  }
  return dir;
}

/** Runs node on `file` in `cwd`; returns stdout, throwing with stderr when it fails. */
export function runNode(cwd: string, file: string): string {
  const r = spawnSync(process.execPath, [file], { cwd, encoding: "utf8" });
  if (r.status !== 0) throw new Error(`node ${file} exited ${r.status}:\n${r.stderr}${r.stdout}`);
  return r.stdout;
}
