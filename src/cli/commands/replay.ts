/**
 * `vfio-sim replay FILE.trace`: runs a vfio-trace script against the model and prints what
 * the kernel oracle prints for it, byte for byte.
 */
import { readFileSync } from "node:fs";
import type { CliIo, Command } from "../command";
import { replayTrace } from "../../trace";
import { PLATFORMS } from "../../iommu/platform";
import { TYPE1_PROFILE_NAMES, type Type1Profile } from "../../type1/options";
import type { PackVariant } from "../../bitmap";

const USAGE = `usage: vfio-sim replay [--profile linux-6.1|linux-6.12|mainline] [--platform vtd|smmu] [--bitmap-copy byte|word|simd] FILE.trace...

Replays each vfio-trace script (format: src/trace/trace-format.md in the package) against the model
and prints one result line per call, exactly as the kernel oracle prints it.
Exit status: 0 when every file ran, 1 when a file cannot be read, 2 on a usage error.
`;

export const replayCommand: Command = {
  name: "replay",
  summary: "replay a vfio-trace script and print the kernel oracle's output",
  run(argv: readonly string[], io: CliIo): number {
    let profile: Type1Profile = "linux-6.1";
    let platform = "vtd";
    let bitmapCopy: PackVariant = "simd";
    const files: string[] = [];
    for (let i = 0; i < argv.length; i++) {
      const a = argv[i];
      const val = (): string | undefined => argv[++i];
      if (a === "--help" || a === "-h") {
        io.out(USAGE);
        return 0;
      } else if (a === "--profile") {
        const v = val();
        const p = TYPE1_PROFILE_NAMES.find((n) => n === v);
        if (p === undefined) return usage(io, `unknown profile: ${v}`);
        profile = p;
      } else if (a === "--platform") {
        const v = val();
        if (v === undefined || !(v in PLATFORMS)) return usage(io, `unknown platform: ${v}`);
        platform = v;
      } else if (a === "--bitmap-copy") {
        const v = val();
        if (v !== "byte" && v !== "word" && v !== "simd") return usage(io, `unknown bitmap copy: ${v}`);
        bitmapCopy = v;
      } else if (a.startsWith("-") && a !== "-") {
        return usage(io, `unknown option: ${a}`);
      } else {
        files.push(a);
      }
    }
    if (files.length === 0) return usage(io, "no trace file given");
    for (const f of files) {
      let text: string;
      try {
        text = readFileSync(f === "-" ? 0 : f, "utf8");
      } catch (e) {
        io.err(`vfio-sim replay: cannot read ${f}: ${(e as Error).message}\n`);
        return 1;
      }
      io.out(replayTrace(text, { platform: PLATFORMS[platform](), type1: { profile, bitmapCopy } }));
    }
    return 0;
  },
};

function usage(io: CliIo, msg: string): number {
  io.err(`vfio-sim replay: ${msg}\n${USAGE}`);
  return 2;
}
