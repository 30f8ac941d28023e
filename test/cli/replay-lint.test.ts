/**
 * `replay` on scripts with typos: the runner (and so the replay) runs them anyway; the
 * lint finds each word it would ignore or misread, `replay` warns on stderr (output
 * unchanged) and `--strict` refuses with FILE:LINE. Every recorded corpus lints clean but
 * for the findings listed here, each one real.
 */
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { main } from "../../src/cli/main";
import type { CliIo } from "../../src/cli/command";
import { lintTrace, replayTrace } from "../../src/trace";

function capture(): CliIo & { stdout: string; stderr: string } {
  const io = { stdout: "", stderr: "", isTTY: false, out: (s: string) => void (io.stdout += s), err: (s: string) => void (io.stderr += s) };
  return io;
}

const lint = (text: string): string[] => lintTrace(text).map((p) => `${p.lineno}: ${p.message}`);

describe("lintTrace", () => {
  test("a clean type1 script has nothing to say", () => {
    expect(lint("# demo\ncase demo arena=0x800000\nmap vaddr=+0 iova=0x3000 size=0x5000\nmaps count=3 vaddr=+0 iova=0x10000 size=0x1000 iova_step=0x2000\nmemlock bytes=unlimited\nmprotect addr=+0 size=0x1000 prot=r\nunmap iova=0 size=-1\nlocked\n")).toEqual([]);
  });

  test("each kind of typo, at its line", () => {
    const text = [
      "case typos", // 1
      "mapp vaddr=+0 iova=0 size=0x1000", // 2: unknown verb, suggestion
      "map vaddr=+0 iova=0 sise=0x1000", // 3: unknown key, suggestion
      "map vaddr=+0 iova=0 size=4k", // 4: strtoull reads 4
      "map vaddr=+0 iova=0x1000 iova=0x2000 size=0x1000", // 5: first wins
      "map vaddr=+0 iova=0 size=0x1000 rw", // 6: not key=value
      "mprotect addr=+0 size=0x1000 prot=ro", // 7: prot
      "locked now=1", // 8: a verb without keys
      "map vaddr=unlimited iova=0 size=0x1000", // 9: addresses do not take unlimited
      "ioas_alloc", // 10: an iommufd verb in the type1 world
      `map ${Array.from({ length: 33 }, (_, i) => `k${i}=1`).join(" ")}`, // 11: 34 words
      `peek addr=+0 size=8 ${"#".repeat(1100)}`, // 12: over 1023 bytes (a comment, still split)
      "world mock", // 14 (13 is the rest of line 12): not first, so an unknown verb here
    ].join("\n");
    const got = lint(text);
    expect(got).toEqual([
      "2: unknown verb 'mapp' (the runner prints UNKNOWN-OP); did you mean 'map'?",
      "3: unknown key 'sise' for map; did you mean 'size'? (keys: argsz, flags, vaddr, iova, size); the runner ignores it",
      "4: size=4k: not a whole number: strtoull() reads decimal, 0x hex or 0-octal, optionally signed, and stops at the first other character",
      "5: iova= given twice: the runner uses the first (0x1000) and ignores 0x2000",
      "6: 'rw' is not a key=value word; the runner ignores it",
      "7: prot=ro: prot is none, r or rw (the runner reads anything else as rw)",
      "8: unknown key 'now' for locked (it takes none); the runner ignores it",
      expect.stringMatching(/^9: vaddr=unlimited: not a whole number/),
      "10: 'ioas_alloc' is not a verb of the type1 world (an iommufd verb: the runner prints UNKNOWN-OP)",
      expect.stringMatching(/^11: 34 words: the runner reads the first 32 and ignores 'k31=1' and after$/),
      ...Array.from({ length: 31 }, () => expect.stringMatching(/^11: unknown key 'k\d+' for map/)),
      "12: line longer than 1023 bytes: the runner reads it in pieces, each a line of its own",
      "14: 'world' chooses the world on the first line only; here it is an unknown verb (the runner prints UNKNOWN-OP)",
    ]);
  });

  test("the iommufd worlds: $NAMEs must be set earlier in the case, type1 verbs have no container", () => {
    const text = [
      "world mock",
      "case a",
      "ioas_alloc as=io",
      "mock_domain id=$io as=m0",
      "set_dirty hwpt=$m0_hwpt flags=1",
      "ioas_map ioas=$oi user_va=+0 length=0x1000 iova=$iova+0x1000",
      "map vaddr=+0 iova=0 size=0x1000",
      "fill addr=$iova size=8",
      "case b",
      "destroy id=$io",
    ].join("\n");
    expect(lint(text)).toEqual([
      "6: ioas=$oi: nothing in this case sets $oi (it reads as 0)",
      "6: iova=$iova+0x1000: nothing in this case sets $iova (it reads as 0)",
      "7: 'map' is not a verb of the mock world (a type1 verb: there is no container, it fails with EBADF)",
      "8: addr=$iova: $NAME values are read by the iommufd verbs only",
      "10: id=$io: nothing in this case sets $io (it reads as 0)",
    ]);
  });
});

describe("vfio-sim replay on a script with typos", () => {
  const dir = mkdtempSync(join(tmpdir(), "vfio-sim-lint-"));
  const file = join(dir, "typo.trace");
  const text = "case t\nmap vaddr=+0 iova=0 size=0x1000\nmap vaddr=+0 iova=0x1000 size=4k\nlokced\n";
  writeFileSync(file, text);

  test("warns on stderr with FILE:LINE, prints the runner's output unchanged, exit 0", async () => {
    const io = capture();
    expect(await main(["replay", file], io)).toBe(0);
    expect(io.stdout).toBe(replayTrace(text));
    expect(io.stdout).toMatch(/^4 lokced = -1 UNKNOWN-OP$/m);
    expect(io.stderr).toBe(
      `${file}:3: warning: size=4k: not a whole number: strtoull() reads decimal, 0x hex or 0-octal, optionally signed, and stops at the first other character\n` +
        `${file}:4: warning: unknown verb 'lokced' (the runner prints UNKNOWN-OP); did you mean 'locked'?\n`,
    );
  });

  test("--strict refuses: errors with FILE:LINE, nothing replayed, exit 2", async () => {
    const io = capture();
    const clean = join(dir, "clean.trace");
    writeFileSync(clean, "case c\nlocked\n");
    expect(await main(["replay", "--strict", clean, file], io)).toBe(2);
    expect(io.stdout).toBe("");
    expect(io.stderr).toMatch(new RegExp(`^${file.replace(/[.]/g, "\\.")}:3: error: size=4k: not a whole number`, "m"));
    expect(io.stderr).toMatch(/:4: error: unknown verb 'lokced'/);
    expect(io.stderr).toMatch(/--strict: nothing replayed\n$/);
    const ok = capture();
    expect(await main(["replay", "--strict", clean], ok)).toBe(0);
    expect(ok.stderr).toBe("");
  });
});

describe("the recorded corpora", () => {
  const root = join(__dirname, "..", "conformance");
  const files = readdirSync(root, { withFileTypes: true })
    .filter((d) => d.isDirectory())
    .flatMap((d) => readdirSync(join(root, d.name)).filter((f) => f.endsWith(".trace")).map((f) => join(d.name, f)));

  /**
   * The only findings in them, each real. hunt-runner-syntax probes the runner's
   * tolerance on purpose (a repeated key, an unknown key, an unknown verb, a key on a verb
   * without keys). The gen-2xx/3xx traces came from test/oracle/gen-type1-trace.ts, whose
   * hex() prints a negative number as `0x-1000`: strtoull reads 0 there, which is what the
   * recordings show; the scripts stay valid recordings of that. The mtty world's
   * states.trace names a data_read's result (`as=pre`), which the runner does not keep.
   */
  const EXPECTED: Readonly<Record<string, (lines: string[], text: string[]) => void>> = {
    "hunt-runner-syntax.trace": (got) =>
      expect(got).toEqual([
        "6: iova= given twice: the runner uses the first (0x20000) and ignores 0x30000",
        "12: unknown key 'bogus' for map (keys: argsz, flags, vaddr, iova, size); the runner ignores it",
        "13: unknown verb 'frobnicate' (the runner prints UNKNOWN-OP)",
        "26: unknown key 'extra' for locked (it takes none); the runner ignores it",
      ]),
    "states.trace": (got) =>
      expect(got).toEqual(["77: unknown key 'as' for data_read; did you mean 'fd'? (keys: fd, buf, count); the runner ignores it"]),
  };
  const negativeHex = (got: string[], text: string[]): void => {
    expect(got.length).toBeGreaterThan(0);
    for (const g of got) {
      const [, n, key, value] = /^(\d+): (\w+)=(0x-[0-9a-f]+): not a whole number/.exec(g) ?? [];
      expect(value).toBeDefined();
      expect(text[Number(n) - 1]).toContain(` ${key}=${value}`);
    }
  };

  test.each(files.map((f) => [f]))("%s", (f) => {
    const text = readFileSync(join(root, f), "utf8");
    const got = lint(text);
    const base = f.split("/").pop()!;
    if (EXPECTED[base]) EXPECTED[base](got, text.split("\n"));
    else if (/^gen-[23]\d\d\.trace$/.test(base) && got.length > 0) negativeHex(got, text.split("\n"));
    else expect(got).toEqual([]);
  });

  test("there are corpora in every directory", () => {
    expect(files.length).toBeGreaterThan(100);
    expect(new Set(files.map((f) => f.split("/")[0])).size).toBeGreaterThanOrEqual(4);
  });
});
