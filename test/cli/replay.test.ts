import { mkdtempSync, writeFileSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { tmpdir } from "node:os";
import { main } from "../../src/cli/main";

function io(): { out: string[]; err: string[]; io: { out(s: string): void; err(s: string): void; isTTY: boolean } } {
  const out: string[] = [];
  const err: string[] = [];
  return { out, err, io: { out: (s) => out.push(s), err: (s) => err.push(s), isTTY: false } };
}

describe("vfio-sim replay", () => {
  it("prints the oracle's bytes for a recorded trace and exits 0", async () => {
    const dir = join(__dirname, "..", "conformance", "linux-6.1");
    const b = io();
    expect(await main(["replay", join(dir, "basics.trace")], b.io)).toBe(0);
    expect(b.out.join("")).toBe(readFileSync(join(dir, "basics.out"), "utf8"));
  });

  it("--profile linux-6.12 prints the 6.12 recording (a read-only pin of never-written memory charges there)", async () => {
    const dir = join(__dirname, "..", "conformance", "linux-6.12");
    const b = io();
    expect(await main(["replay", "--profile", "linux-6.12", join(dir, "memlock-uncharged-pins.trace")], b.io)).toBe(0);
    expect(b.out.join("")).toBe(readFileSync(join(dir, "memlock-uncharged-pins.out"), "utf8"));
  });

  it("exits 1 for an unreadable file and 2 for usage errors", async () => {
    const a = io();
    expect(await main(["replay", "/nonexistent/x.trace"], a.io)).toBe(1);
    expect(a.err.join("")).toMatch(/cannot read/);
    expect(await main(["replay"], io().io)).toBe(2);
    expect(await main(["replay", "--profile", "nope", "x"], io().io)).toBe(2);
    expect(await main(["replay", "--bogus", "x"], io().io)).toBe(2);
    const h = io();
    expect(await main(["replay", "--help"], h.io)).toBe(0);
    expect(h.out.join("")).toMatch(/usage: vfio-sim replay/);
  });

  it("runs scripts with unknown verbs and the mainline profile", async () => {
    const d = mkdtempSync(join(tmpdir(), "vfio-sim-"));
    const f = join(d, "x.trace");
    writeFileSync(f, "case x\nfrobnicate\nmap vaddr=+0 iova=0xfffffffffffff000 size=0x2000\ninfo argsz=4096\n");
    const a = io();
    expect(await main(["replay", "--profile", "mainline", f], a.io)).toBe(0);
    expect(a.out.join("")).toBe(
      "case x\n2 frobnicate = -1 UNKNOWN-OP\n3 map = -1 EOVERFLOW\n" +
        "4 info = 0 OK argsz=4096 flags=0x3 pgsizes=0x40201000 cap_offset=24 cap2.v1@24[flags=0x0 pgsize_bitmap=0x1000 max_dirty_bitmap_size=0x10000000] cap3.v1@56[avail=65535] cap1.v1@72[n=2 0x0-0xfedfffff 0xfef00000-0x7fffffffff]\n",
    );
  });
});
