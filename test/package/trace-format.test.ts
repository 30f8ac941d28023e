import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { replayCommand } from "../../src/cli/commands/replay";

// Issue 14: the trace format is documented inside the project, in a file the package ships,
// and the CLI and README send users there, not to the developers' shared/ folder.
const ROOT = join(__dirname, "../..");
const DOC = "src/trace/trace-format.md";

test("replay --help and the README point to the shipped trace-format.md", () => {
  let help = "";
  const io = { isTTY: false, out: (s: string) => void (help += s), err: (s: string) => void (help += s) };
  replayCommand.run(["--help"], io);
  expect(help).toContain(DOC);
  expect(help).not.toMatch(/shared\//);

  const readme = readFileSync(join(ROOT, "README.md"), "utf8");
  expect(readme).toContain(DOC);
  expect(readme).not.toMatch(/shared\/conformance\/vfio-trace\.md/);

  expect(existsSync(join(ROOT, DOC))).toBe(true);
  const pkg = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")) as { files: string[]; exports: Record<string, unknown> };
  expect(pkg.files).toContain(DOC);
  expect(pkg.exports["./trace-format.md"]).toBe(`./${DOC}`);
  // The document covers the verbs the replay runner knows (a sample of each world).
  const doc = readFileSync(join(ROOT, DOC), "utf8");
  for (const word of ["case", "map", "unmap", "dirty", "world mock", "world edu"]) expect([word, doc.includes(word)]).toEqual([word, true]);
});
