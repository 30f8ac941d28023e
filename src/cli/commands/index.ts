/** The subcommands of `vfio-sim`, in the order `--help` lists them. */
import type { Command } from "../command";
import { migrateCommand } from "./migrate";
import { replayCommand } from "./replay";
import { liveUpdateCommand } from "./live-update";

export const COMMANDS: readonly Command[] = [migrateCommand, replayCommand, liveUpdateCommand];
