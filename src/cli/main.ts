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
  ${"help".padEnd(width)}  show this help, or a command's (vfio-sim help migrate)

Options:
  -h, --help       show this help (also: vfio-sim <command> --help)
  -V, --version    print the version
`;
}

/** Runs the CLI with `argv` (without node and script name); resolves to the exit status. */
export async function main(argv: readonly string[], io: CliIo = processIo()): Promise<number> {
  const [cmd, ...rest] = argv;
  if (cmd === "help" && rest.length > 0) {
    // `vfio-sim help migrate` is `vfio-sim migrate --help`.
    const topic = COMMANDS.find((c) => c.name === rest[0]);
    if (!topic) {
      io.err(`vfio-sim help: unknown command '${rest[0]}'\n\n${usage()}`);
      return 2;
    }
    return topic.run(["--help"], io);
  }
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

/**
 * A reader that went away (`vfio-sim migrate | head`): stop at once and quietly, with
 * status 0, as a Unix filter does when nobody reads its output any more. The pipe's write
 * fails synchronously (stdio pipes are blocking on Linux and macOS), so a long synchronous
 * run stops at its next line instead of computing on for nobody.
 */
function quitOnClosedPipe(stream: NodeJS.WriteStream): void {
  if (stream.listeners("error").includes(onStreamError)) return;
  stream.on("error", onStreamError);
}

function onStreamError(e: NodeJS.ErrnoException): void {
  if (e.code === "EPIPE") process.exit(0);
  throw e;
}

function writeTo(stream: NodeJS.WriteStream, s: string): void {
  stream.write(s);
  // A failed write marks the stream errored at once; its 'error' event only comes later.
  if ((stream.errored as NodeJS.ErrnoException | null)?.code === "EPIPE") process.exit(0);
}

/** The real process's streams. */
export function processIo(): CliIo {
  quitOnClosedPipe(process.stdout);
  quitOnClosedPipe(process.stderr);
  return {
    out: (s) => writeTo(process.stdout, s),
    err: (s) => writeTo(process.stderr, s),
    isTTY: Boolean(process.stdout.isTTY),
    get columns() {
      return process.stdout.isTTY ? process.stdout.columns : undefined;
    },
  };
}

if (require.main === module) {
  main(process.argv.slice(2)).then((code) => {
    process.exitCode = code;
  });
}
