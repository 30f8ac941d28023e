#!/usr/bin/env node
/**
 * The `vfio-sim` command line: parses the first word and dispatches to a subcommand from
 * src/cli/commands/. Exit status: 0 success, 1 failure, 2 usage error.
 */
import type { CliIo } from "./command";
import { COMMANDS } from "./commands";

function usage(): string {
  const width = Math.max(8, ...COMMANDS.map((c) => c.name.length));
  const list = COMMANDS.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`).join("\n");
  return `Usage: vfio-sim <command> [options]

An executable, kernel-faithful model of Linux's VFIO type1, IOMMU page tables,
iommufd dirty tracking and the vhost IOTLB.

Commands:
${list}
  ${"help".padEnd(width)}  show this help

Options:
  -h, --help       show this help (also: vfio-sim <command> --help)
  -V, --version    print the version
`;
}

/** Runs the CLI with `argv` (without node and script name); resolves to the exit status. */
export async function main(argv: readonly string[], io: CliIo = processIo()): Promise<number> {
  const [cmd, ...rest] = argv;
  if (cmd === undefined || cmd === "help" || cmd === "-h" || cmd === "--help") {
    (cmd === undefined ? io.err : io.out)(usage());
    return cmd === undefined ? 2 : 0;
  }
  if (cmd === "-V" || cmd === "--version") {
    io.out(`${(require("../../package.json") as { version: string }).version}\n`);
    return 0;
  }
  const command = COMMANDS.find((c) => c.name === cmd);
  if (!command) {
    io.err(`vfio-sim: unknown command '${cmd}'\n\n${usage()}`);
    return 2;
  }
  try {
    return await command.run(rest, io);
  } catch (e) {
    io.err(`vfio-sim ${cmd}: internal error: ${(e as Error).stack ?? String(e)}\n`);
    return 1;
  }
}

/** The real process's streams. */
export function processIo(): CliIo {
  return {
    out: (s) => void process.stdout.write(s),
    err: (s) => void process.stderr.write(s),
    isTTY: Boolean(process.stdout.isTTY),
  };
}

if (require.main === module) {
  main(process.argv.slice(2)).then((code) => {
    process.exitCode = code;
  });
}
