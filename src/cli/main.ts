#!/usr/bin/env node
/**
 * The `vfio-sim` command line. Subcommands are added by their subsystems; this file only
 * parses the first word and dispatches.
 */
const USAGE = `Usage: vfio-sim <command> [options]

An executable, kernel-faithful model of Linux's VFIO type1, IOMMU page tables,
iommufd dirty tracking and the vhost IOTLB.

Commands:
  help             show this help

Options:
  -h, --help       show this help
  -V, --version    print the version
`;

/** Runs the CLI with `argv` (without node and script) and returns the exit status. */
export function main(argv: readonly string[], out: (s: string) => void = (s) => process.stdout.write(s), err: (s: string) => void = (s) => process.stderr.write(s)): number {
  const [cmd] = argv;
  if (cmd === undefined || cmd === "help" || cmd === "-h" || cmd === "--help") {
    out(USAGE);
    return cmd === undefined ? 2 : 0;
  }
  if (cmd === "-V" || cmd === "--version") {
    // eslint-disable-next-line @typescript-eslint/no-var-requires
    out(`${(require("../../package.json") as { version: string }).version}\n`);
    return 0;
  }
  err(`vfio-sim: unknown command '${cmd}'\n\n${USAGE}`);
  return 2;
}

if (require.main === module) process.exitCode = main(process.argv.slice(2));
