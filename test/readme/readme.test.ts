/**
 * Every command output shown in README.md (the blocks marked `<!-- output: vfio-sim ... -->`)
 * is what the command prints today, but for measured wall times. `npm run readme` rewrites
 * the blocks after a change of output (see test/readme/readme.ts).
 */
import { readFileSync } from "node:fs";
import { README, findBlocks, maskWallTimes, runCommand } from "./readme";

const blocks = findBlocks(readFileSync(README, "utf8"));

test("the README marks the outputs of its main commands", () => {
  expect(blocks.map((b) => b.command)).toEqual(expect.arrayContaining(["vfio-sim migrate", "vfio-sim live-update"]));
});

test.each(blocks.map((b) => [b.command, b]))("README output of `%s` is current (else: npm run readme)", async (_command, b) => {
  const { status, stdout } = await runCommand(b.command);
  expect(status).toBe(0);
  expect(maskWallTimes(b.shown)).toBe(maskWallTimes(stdout));
}, 600_000);

test("only measured wall times are masked", () => {
  const masked = maskWallTimes(
    [
      "round  1  sending    64 GiB (55 s simulated); devices wrote 3.82 GiB, harvest reported 3.82 GiB in 13.7 ms",
      "    1  pre-copy           64 GiB            55 s     1342176    3.82 GiB    3.82 GiB         13.7 ms",
      "  Sent 68.8 GiB in 59.1 s of simulated time; harvests took 44.9 ms of wall time; the run took 2.13 s.",
    ].join("\n"),
  );
  expect(masked).toBe(
    [
      "round  1  sending    64 GiB (55 s simulated); devices wrote 3.82 GiB, harvest reported 3.82 GiB in <wall>",
      "    1  pre-copy           64 GiB            55 s     1342176    3.82 GiB    3.82 GiB <wall>",
      "  Sent 68.8 GiB in 59.1 s of simulated time; harvests took <wall> of wall time; the run took <wall>.",
    ].join("\n"),
  );
});
