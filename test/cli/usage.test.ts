/**
 * What a new user trips on first (issue 14): `help COMMAND`, the `--opt=value` form of
 * every option, a clear message for an option without its value, and a closed pipe
 * (`vfio-sim migrate | head`) ending the command quietly.
 */
import { spawn } from "node:child_process";
import { join } from "node:path";
import { main } from "../../src/cli/main";
import { COMMANDS } from "../../src/cli/commands";
import type { CliIo } from "../../src/cli/command";

function capture(): CliIo & { stdout: string; stderr: string } {
  const io = { stdout: "", stderr: "", isTTY: false, out: (s: string) => void (io.stdout += s), err: (s: string) => void (io.stderr += s) };
  return io;
}

const ROOT = join(__dirname, "..", "..");
const BASICS = join(ROOT, "test", "conformance", "linux-6.1", "basics.trace");

describe("vfio-sim help COMMAND", () => {
  test.each(COMMANDS.map((c) => [c.name]))("help %s prints what --help prints, exit 0", async (name) => {
    const viaHelp = capture();
    const viaFlag = capture();
    expect(await main(["help", name], viaHelp)).toBe(0);
    expect(await main([name, "--help"], viaFlag)).toBe(0);
    expect(viaHelp.stdout).toBe(viaFlag.stdout);
    expect(viaHelp.stdout).toContain(`vfio-sim ${name}`);
    expect(viaHelp.stdout).not.toMatch(/^Commands:/m);
  });

  test("help of an unknown command is a usage error naming it", async () => {
    const io = capture();
    expect(await main(["help", "migrat"], io)).toBe(2);
    expect(io.stderr).toMatch(/unknown command 'migrat'/);
  });
});

describe("options", () => {
  test.each([
    [["replay", "--profile"], /^vfio-sim replay: option --profile needs a value\n/],
    [["replay", "--platform"], /^vfio-sim replay: option --platform needs a value\n/],
    [["replay", "--profile", "linux-5.4", "x"], /unknown profile 'linux-5.4' \(linux-6.1, linux-6.12, mainline\)/],
    [["replay", "--strict=yes", "x"], /option --strict takes no value/],
    [["live-update", "--seed"], /option --seed needs a value/],
    [["live-update", "--scenario"], /option --scenario needs a value/],
    [["live-update", "--json=1"], /option --json takes no value/],
    [["migrate", "--profile"], /option --profile needs a value/],
    [["migrate", "--json=yes"], /option --json takes no value/],
  ])("%j: a clear message, exit 2", async (argv, msg) => {
    const io = capture();
    expect(await main(argv as string[], io)).toBe(2);
    expect(io.stderr).toMatch(msg as RegExp);
    expect(io.stderr).not.toMatch(/undefined/);
  });

  test("replay takes --opt=value as --opt value", async () => {
    const a = capture();
    const b = capture();
    expect(await main(["replay", "--profile=mainline", "--platform=smmu", "--bitmap-copy=byte", BASICS], a)).toBe(0);
    expect(await main(["replay", "--profile", "mainline", "--platform", "smmu", "--bitmap-copy", "byte", BASICS], b)).toBe(0);
    expect(a.stdout).toBe(b.stdout);
    // smmu answers differently from the default vtd, so the option was read, not ignored.
    const vtd = capture();
    await main(["replay", "--profile=mainline", BASICS], vtd);
    expect(vtd.stdout).not.toBe(a.stdout);
  });

  test("live-update takes --opt=value as --opt value", async () => {
    const a = capture();
    const b = capture();
    expect(await main(["live-update", "--seed=5", "--writes=3", "--scenario=remap-mismatch", "--json"], a)).toBe(0);
    expect(await main(["live-update", "--seed", "5", "--writes", "3", "--scenario", "remap-mismatch", "--json"], b)).toBe(0);
    // Simulated pids count on across runs in one process; everything else must agree.
    const pidless = (s: string) => s.replace(/"pid": \d+/g, '"pid": 0');
    expect(pidless(a.stdout)).toBe(pidless(b.stdout));
    expect(JSON.parse(a.stdout)).toMatchObject({ scenario: "remap-mismatch", seed: 5 });
  });

  test("migrate takes --opt=value as --opt value", async () => {
    const a = capture();
    expect(await main(["migrate", "--guest=1G", "--profile=mainline", "--seed=2", "--json"], a)).toBe(0);
    expect(JSON.parse(a.stdout).scenario).toMatchObject({ guestBytes: 2 ** 30, type1Profile: "mainline", seed: 2 });
  });
});

/**
 * The real command in a child process (from the sources through tsx, so the test does not
 * depend on a fresh `npm run build`), its stdout read until `keep` bytes arrived, then
 * closed, as `| head -c` does.
 */
function runClosingEarly(argv: string[], keep: number): Promise<{ code: number | null; signal: string | null; got: string; stderr: string }> {
  return new Promise((done, fail) => {
    const child = spawn(process.execPath, ["-r", "tsx/cjs", join(ROOT, "src", "cli", "main.ts"), ...argv], { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"] });
    let got = "";
    let stderr = "";
    child.stderr.on("data", (b: Buffer) => void (stderr += b.toString()));
    child.stdout.on("data", (b: Buffer) => {
      got += b.toString();
      if (got.length >= keep) child.stdout.destroy();
    });
    child.on("error", fail);
    child.on("close", (code, signal) => done({ code, signal, got, stderr }));
  });
}

describe("a reader that closes early (`| head`)", () => {
  test("migrate stops quietly with status 0", async () => {
    // The first line arrives at once; the rest only after round 1, when the pipe is gone.
    const r = await runClosingEarly(["migrate", "--guest", "8G", "--working-set", "1G"], 1);
    expect(r.got).toMatch(/^vfio-sim migrate/);
    expect(r.stderr).toBe("");
    expect(r.signal).toBeNull();
    expect(r.code).toBe(0);
  });

  test("replay stops quietly with status 0", async () => {
    // Far more output than a pipe buffers, so writes are still pending when the reader leaves.
    const r = await runClosingEarly(["replay", ...Array(200).fill(BASICS)], 1);
    expect(r.got).toMatch(/^case basics/);
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
  });
});
