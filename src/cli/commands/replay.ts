/**
 * `vfio-sim replay FILE.trace`: runs a vfio-trace script against the model and prints what
 * the kernel oracle prints for it, byte for byte.
 */
import { readFileSync } from "node:fs";
import type { CliIo, Command } from "../command";
import { lintTrace, replayTrace } from "../../trace";
import { OptionCursor, needsValue } from "../options";
import { PLATFORMS } from "../../iommu/platform";
import { TYPE1_PROFILE_NAMES, type Type1Profile } from "../../type1/options";
import type { PackVariant } from "../../bitmap";

const USAGE = `usage: vfio-sim replay [--profile linux-6.1|linux-6.12|mainline] [--platform vtd|smmu] [--bitmap-copy byte|word|simd] [--strict] FILE.trace...

Replays each vfio-trace script (format: src/trace/trace-format.md in the package) against the model
and prints one result line per call, exactly as the kernel oracle prints it. FILE - reads stdin.

Like the kernel-side runner, the replay runs what it does not understand too (an unknown verb
prints UNKNOWN-OP, an unknown key is ignored, strtoull() reads size=4k as 4); each such word is
reported on stderr as FILE:LINE: warning: ... and the output stays the runner's.
  --strict      refuse such scripts instead: FILE:LINE: error: ..., nothing replayed, exit 2
Options take their value as --profile linux-6.12 or --profile=linux-6.12.
Exit status: 0 when every file ran, 1 when a file cannot be read, 2 on a usage error (or a
problem in a script under --strict).
`;

export const replayCommand: Command = {
  name: "replay",
  summary: "replay a vfio-trace script and print the kernel oracle's output",
  run(argv: readonly string[], io: CliIo): number {
    let profile: Type1Profile = "linux-6.1";
    let platform = "vtd";
    let bitmapCopy: PackVariant = "simd";
    let strict = false;
    const files: string[] = [];
    const args = new OptionCursor(argv);
    for (let w = args.next(); w !== null; w = args.next()) {
      const a = w.name;
      if (a === "--help" || a === "-h") {
        io.out(USAGE);
        return 0;
      } else if (a === "--strict") {
        if (w.inline !== undefined) return usage(io, `option ${a} takes no value`);
        strict = true;
      } else if (a === "--profile" || a === "--platform" || a === "--bitmap-copy") {
        const v = args.value();
        if (v === null) return usage(io, needsValue(a));
        if (a === "--profile") {
          const p = TYPE1_PROFILE_NAMES.find((n) => n === v);
          if (p === undefined) return usage(io, `unknown profile '${v}' (${TYPE1_PROFILE_NAMES.join(", ")})`);
          profile = p;
        } else if (a === "--platform") {
          if (!(v in PLATFORMS)) return usage(io, `unknown platform '${v}' (${Object.keys(PLATFORMS).join(", ")})`);
          platform = v;
        } else {
          if (v !== "byte" && v !== "word" && v !== "simd") return usage(io, `unknown bitmap copy '${v}' (byte, word, simd)`);
          bitmapCopy = v;
        }
      } else if (a.startsWith("-") && a !== "-") {
        return usage(io, `unknown option: ${a}`);
      } else {
        files.push(a);
      }
    }
    if (files.length === 0) return usage(io, "no trace file given");
    const scripts: Array<{ file: string; text: string }> = [];
    for (const f of files) {
      try {
        scripts.push({ file: f === "-" ? "<stdin>" : f, text: readFileSync(f === "-" ? 0 : f, "utf8") });
      } catch (e) {
        io.err(`vfio-sim replay: cannot read ${f}: ${(e as Error).message}\n`);
        return 1;
      }
    }
    const problems = scripts.map((s) => lintTrace(s.text));
    const report = (i: number, level: string): string => problems[i].map((p) => `${scripts[i].file}:${p.lineno}: ${level}: ${p.message}\n`).join("");
    if (strict && problems.some((p) => p.length > 0)) {
      io.err(scripts.map((_, i) => report(i, "error")).join("") + "vfio-sim replay: --strict: nothing replayed\n");
      return 2;
    }
    scripts.forEach((s, i) => {
      if (problems[i].length > 0) io.err(report(i, "warning"));
      io.out(replayTrace(s.text, { platform: PLATFORMS[platform](), type1: { profile, bitmapCopy } }));
    });
    return 0;
  },
};

function usage(io: CliIo, msg: string): number {
  io.err(`vfio-sim replay: ${msg}\n${USAGE}`);
  return 2;
}
