/**
 * The README's command outputs, kept honest. A block of output in README.md is marked by
 * the command that prints it, on the line before the block (a blank line may follow):
 *
 *     <!-- output: vfio-sim migrate --guest 8G -->
 *
 * followed by a fenced block or a 4-space indented block. `npm run readme` runs every
 * marked command (as `vfio-sim` would run it: stdout only, not on a terminal) and
 * rewrites its block; test/readme/readme.test.ts runs them and compares. Measured wall
 * times (harvest times, the run's time) differ on every run: the comparison masks them,
 * and so they are the only numbers in a marked block that may be stale.
 *
 * Usage: npm run readme            rewrite README.md's marked blocks whose output changed
 *        npm run readme -- --force also those that differ only in wall times (run it on
 *                                  a quiet machine: the times are measured)
 *        npm run readme -- --check exit 1 when a block differs (what the test checks)
 */
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { spawn } from "node:child_process";

export const README = join(__dirname, "..", "..", "README.md");

/** One marked block: its command and where its body (the lines of the block) sits in the text. */
export interface OutputBlock {
  readonly command: string;
  readonly style: "fenced" | "indented";
  /** Offsets of the block's lines in the README, fences included. */
  readonly start: number;
  readonly end: number;
  /** The output as the block shows it (fences and indentation removed). */
  readonly shown: string;
}

const MARKER = /^<!-- output: (vfio-sim [^\n]*?) -->\n/gm;

/** Every marked block of a README text, in order. */
export function findBlocks(text: string): OutputBlock[] {
  const blocks: OutputBlock[] = [];
  for (const m of text.matchAll(MARKER)) {
    let at = m.index! + m[0].length;
    while (text.startsWith("\n", at)) at++;
    const rest = text.slice(at);
    const fenced = /^```[^\n]*\n([\s\S]*?)^```[ \t]*(?:\n|$)/m.exec(rest);
    if (fenced && fenced.index === 0) {
      blocks.push({ command: m[1], style: "fenced", start: at, end: at + fenced[0].length, shown: fenced[1] });
      continue;
    }
    // An indented block: lines of 4+ spaces, blank lines inside it included.
    const lines = rest.split("\n");
    let n = 0;
    let last = -1;
    for (; n < lines.length; n++) {
      if (lines[n].startsWith("    ")) last = n;
      else if (lines[n].trim() !== "") break;
    }
    if (last < 0) throw new Error(`README: no code block after '<!-- output: ${m[1]} -->'`);
    const body = lines.slice(0, last + 1);
    const length = body.join("\n").length + 1;
    blocks.push({ command: m[1], style: "indented", start: at, end: at + length, shown: body.map((l) => l.slice(4)).join("\n") + "\n" });
  }
  return blocks;
}

/**
 * Runs `vfio-sim ARGS...` as a process of its own from the sources (a fresh process, as
 * the user's: nothing of an earlier command, such as simulated pid numbers, carries over);
 * its stdout (words split on blanks, no quoting).
 */
export function runCommand(command: string): Promise<{ status: number | null; stdout: string }> {
  const argv = command.split(/\s+/).filter((w) => w.length > 0).slice(1);
  const root = join(__dirname, "..", "..");
  return new Promise((done, fail) => {
    const child = spawn(process.execPath, ["-r", "tsx/cjs", join(root, "src", "cli", "main.ts"), ...argv], { cwd: root, stdio: ["ignore", "pipe", "ignore"] });
    let stdout = "";
    child.stdout.on("data", (b: Buffer) => void (stdout += b.toString()));
    child.on("error", fail);
    child.on("close", (status) => done({ status, stdout }));
  });
}

/** Masks what is measured rather than computed: harvest and run wall times. */
export function maskWallTimes(text: string): string {
  const t = String.raw`\d+(?:\.\d+)? (?:ms|s)`;
  return text
    .replace(new RegExp(`(harvest reported \\S+ \\S+ in )${t}`, "g"), "$1<wall>")
    .replace(new RegExp(`(harvests took )${t}( of wall time; the run took )${t}`, "g"), "$1<wall>$2<wall>")
    .replace(new RegExp(String.raw`^(\s*\d+\s+(?:pre-copy|stop-and-copy)\s.*?)\s+${t}$`, "gm"), "$1 <wall>");
}

/** A block's text for `output` in the block's own style. */
function render(style: OutputBlock["style"], output: string): string {
  if (style === "fenced") return "```\n" + output + (output.endsWith("\n") ? "" : "\n") + "```\n";
  return (
    output
      .replace(/\n$/, "")
      .split("\n")
      .map((l) => (l === "" ? "" : `    ${l}`))
      .join("\n") + "\n"
  );
}

/**
 * The README with every marked block whose output changed replaced by its command's
 * output now. A block that differs only in wall times is left as it is (times measured on
 * a quiet machine stay) unless `force`.
 */
export async function regenerate(text: string, force = false): Promise<{ text: string; changed: string[] }> {
  let out = text;
  const changed: string[] = [];
  // From the last block back, so earlier offsets stay right.
  for (const b of findBlocks(text).reverse()) {
    const { stdout } = await runCommand(b.command);
    const differs = maskWallTimes(stdout) !== maskWallTimes(b.shown);
    if (differs) changed.unshift(b.command);
    if (differs || force) out = out.slice(0, b.start) + render(b.style, stdout) + out.slice(b.end);
  }
  return { text: out, changed };
}

if (require.main === module) {
  void (async () => {
    const check = process.argv.includes("--check");
    const before = readFileSync(README, "utf8");
    const { text, changed } = await regenerate(before, process.argv.includes("--force"));
    for (const c of changed) process.stdout.write(`${check ? "differs" : "updated"}: ${c}\n`);
    if (check) process.exitCode = changed.length ? 1 : 0;
    else if (text !== before) writeFileSync(README, text);
    if (!changed.length) process.stdout.write(`README.md: ${findBlocks(before).length} marked outputs up to date\n`);
  })();
}
