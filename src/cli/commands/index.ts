/** The subcommands of `vfio-sim`, in the order `--help` lists them. */
import type { Command } from "../command";

export const COMMANDS: readonly Command[] = [];
