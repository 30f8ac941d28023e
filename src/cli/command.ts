/**
 * What a `vfio-sim` subcommand looks like. Each lives in src/cli/commands/ and is listed
 * once in src/cli/commands/index.ts.
 */

/** Where a command writes; tests pass buffers, the real CLI passes the process streams. */
export interface CliIo {
  out(s: string): void;
  err(s: string): void;
  /** Whether stdout is an interactive terminal (progress bars) or not (plain lines). */
  readonly isTTY: boolean;
  /** Width of that terminal in columns, when known (read at each redraw: it can change). */
  readonly columns?: number;
}

/** One subcommand. `run` returns the exit status: 0 success, 1 failure, 2 usage error. */
export interface Command {
  readonly name: string;
  /** One line for the command list in `vfio-sim --help`. */
  readonly summary: string;
  run(argv: readonly string[], io: CliIo): number | Promise<number>;
}
