/**
 * The progress bar on a terminal: it fits the terminal's width (a wrapped line would make
 * every redraw stack a new one), every write ends its line (so Ctrl-C, which kills a
 * synchronous run at once, leaves the prompt on a line of its own) and huge simulated
 * times read in days or years. The last test drives the real command in a pseudo-terminal
 * (util-linux `script`) and presses Ctrl-C.
 */
import { spawn, spawnSync } from "node:child_process";
import { join } from "node:path";
import { main } from "../../src/cli/main";
import type { CliIo } from "../../src/cli/command";
import { formatSeconds } from "../../src/migrate/units";

const ESC = /\x1b\[[0-9;]*[A-Za-z]|\r/g;

function tty(columns: number): CliIo & { writes: string[] } {
  const io = { writes: [] as string[], isTTY: true, columns, out: (s: string) => void io.writes.push(s), err: (s: string) => void io.writes.push(s) };
  return io;
}

describe("progress on a terminal", () => {
  test.each([[50], [80], [200]])("fits %i columns and ends every write with a newline", async (columns) => {
    const io = tty(columns);
    expect(await main(["migrate", "--guest", "8G", "--working-set", "1G"], io)).toBe(0);
    const bars = io.writes.filter((w) => /\] +\d+%/.test(w));
    expect(bars.length).toBeGreaterThan(2);
    for (const w of bars) {
      expect(w.endsWith("\n")).toBe(true);
      // A redraw goes back up exactly one line, which holds exactly one screen row.
      expect(w.replace(ESC, "").replace(/\n$/, "").length).toBeLessThanOrEqual(columns - 1);
    }
    // Every redraw but the first of a round goes back up over the previous bar.
    expect(bars.filter((w) => w.startsWith("\x1b[1A\r\x1b[2K")).length).toBeGreaterThan(0);
    expect(bars.some((w) => /\[#+\] 100%/.test(w))).toBe(true);
    for (const w of io.writes) expect(w.endsWith("\n")).toBe(true);
  });
});

describe("formatSeconds", () => {
  test.each([
    [0.0021, "2.1 ms"],
    [55, "55 s"],
    [599, "599 s"],
    [2700, "45 min"],
    [3.5 * 3600, "3.5 h"],
    [12 * 86400, "12 days"],
    [9_160_000_000 * 60, "17400 years"],
    [1e20, "3.17e+12 years"],
  ])("%d s is %s", (s, text) => {
    expect(formatSeconds(s)).toBe(text);
  });

  test("a link far too slow for the guest prints years, not billions of minutes", async () => {
    const io = { stdout: "", isTTY: false, out: (s: string) => void (io.stdout += s), err: () => undefined };
    expect(await main(["migrate", "--guest", "1G", "--bandwidth", "1bit", "--rate", "0"], io)).toBe(0);
    expect(io.stdout).toMatch(/Sent 1.01 GiB in 274 years of simulated time/);
    expect(io.stdout).not.toMatch(/\d{5,} min/);
  });
});

const hasScript = spawnSync("sh", ["-c", "command -v script"]).status === 0;
(hasScript ? test : test.skip)("Ctrl-C in a 50-column terminal: no wrapped redraws, the line finished, exit 130", async () => {
  const root = join(__dirname, "..", "..");
  const cmd = `stty cols 50; exec ${process.execPath} -r tsx/cjs src/cli/main.ts migrate --guest 16G`;
  const child = spawn("script", ["-qfec", cmd, "/dev/null"], { cwd: root, stdio: ["pipe", "pipe", "pipe"] });
  let text = "";
  let pressed = false;
  child.stdout.on("data", (b: Buffer) => {
    text += b.toString();
    if (!pressed && /\] +\d+%/.test(text)) {
      pressed = true;
      child.stdin.write("\x03"); // the terminal turns it into SIGINT for the foreground job
    }
  });
  const code = await new Promise<number | null>((done) => child.on("close", done));
  expect(pressed).toBe(true);
  expect(code).toBe(130);
  const before = text.slice(0, text.lastIndexOf("^C"));
  expect(before.endsWith("\r\n")).toBe(true);
  for (const line of before.split("\r\n").filter((l) => /\] +\d+%/.test(l))) expect(line.replace(ESC, "").length).toBeLessThanOrEqual(49);
}, 120_000);
