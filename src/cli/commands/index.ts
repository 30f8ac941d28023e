/** The subcommands of `vfio-sim`, in the order `--help` lists them. */
import type { Command } from "../command";
import { replayCommand } from "./replay";

export const COMMANDS: readonly Command[] = [replayCommand];
