/**
 * A seeded generator of random type1 vfio-trace scripts (format:
 * src/trace/trace-format.md), biased to the edges where kernels and the model
 * disagree: boundaries of existing mappings, wraps and the top of the 64-bit space, the MSI
 * window and the aperture end, RLIMIT_MEMLOCK near locked_vm with CAP_IPC_LOCK dropped,
 * read-only pins of never-written memory (the zero page), mprotect/munmap under mappings,
 * VADDR invalidate/update, dirty bitmaps that are unaligned, too small or unreadable.
 *
 *   npx tsx test/oracle/gen-type1-trace.ts --seed 201 [--cases 30] [--calls 40] > gen-201.trace
 *
 * The same seed always gives the same script. To add a recording to the corpus, record the
 * script on both kernels with test/oracle/record-type1.sh (it runs the shared kernel
 * oracles), which writes linux-6.1/NAME.out and linux-6.12/NAME.out next to copies of the
 * trace. The generator never writes (`fill`) memory it has made unwritable, so the oracle's
 * runner never dies of SIGSEGV part way.
 */
import { Rng } from "../../src/util/random";

const ARENA = 0x4000000; // the runner's default 64 MiB arena
const BITMAPS = 0x3f00000; // the last MiB of the arena holds user bitmaps
const PAGE = 0x1000;
const hex = (n: number | bigint): string => `0x${n.toString(16)}`;

interface Mapping {
  iova: number;
  size: number;
}

/** State the generator tracks to aim at interesting values (not a model of the kernel). */
class CaseState {
  maps: Mapping[] = [];
  /** Arena ranges whose protection was changed or that were unmapped: never `fill`ed. */
  tainted: Array<[number, number]> = [];
  written: Array<[number, number]> = [];
  tracking = false;

  isClean(a: number, n: number): boolean {
    return !this.tainted.some(([s, e]) => a < e && s < a + n);
  }
}

class Gen {
  private readonly out: string[] = [];
  private st = new CaseState();

  constructor(private readonly rng: Rng) {}

  private pick<T>(xs: readonly T[]): T {
    return xs[this.rng.int(xs.length)];
  }

  /** A size: mostly whole pages, sometimes 2 MiB-ish, sometimes an edge value. */
  private size(): bigint {
    const r = this.rng.float();
    if (r < 0.5) return BigInt(this.rng.range(1, 24) * PAGE);
    if (r < 0.7) return BigInt(this.pick([0x200000, 0x1ff000, 0x201000, 0x400000, 0x10000, 0x11000]));
    if (r < 0.8) return BigInt(this.rng.range(1, 64) * 0x10000);
    return this.pick([0n, 0x800n, 0x1001n, 0xfffffffffffff000n, 0x8000000000000000n, 0x10000000000n, 0xffffffffffffffffn, 0x2000n]);
  }

  /** An IOVA: near existing mappings, in a small window, or at an edge of the IOVA space. */
  private iova(): bigint {
    const r = this.rng.float();
    const maps = this.st.maps;
    if (r < 0.35 && maps.length) {
      const m = this.pick(maps);
      return BigInt(this.pick([m.iova, m.iova + m.size, m.iova - PAGE, m.iova + PAGE, m.iova + m.size - PAGE, Math.max(0, m.iova - 0x10000)]));
    }
    if (r < 0.8) return BigInt(this.rng.int(0x200) * PAGE);
    return this.pick([0n, 0xfee00000n, 0xfedff000n, 0xfeeff000n, 0xfef00000n, 0x7ffffff000n, 0x8000000000n, 0xfffffffffffff000n, 0xffffffffffe00000n, 0x800n, 0x100000000n]);
  }

  /** A user address: mostly in the arena (aligned to pages or 2 MiB), sometimes outside or unaligned. */
  private vaddr(): string {
    const r = this.rng.float();
    if (r < 0.6) return `+${hex(this.rng.int(0x300) * PAGE)}`;
    if (r < 0.85) return `+${hex(this.rng.int(16) * 0x200000)}`;
    return this.pick(["0", "+0x3fff000", "+0x4000000", "+0x3ffe000", "+0x800", "0x7ffffffff000", "0xfffffffffffff000"]);
  }

  private line(s: string): void {
    this.out.push(s);
  }

  private map(): void {
    const flags = this.pick([3, 3, 3, 1, 1, 2, 0, 4, 8, 7]);
    const iova = this.iova();
    const size = this.size();
    const argsz = this.rng.chance(0.05) ? " argsz=31" : "";
    this.line(`map flags=${flags} vaddr=${this.vaddr()} iova=${hex(iova)} size=${hex(size)}${argsz}`);
    if ((flags & 3) !== 0 && size > 0n && size < 0x10000000n && iova < 0x10000000n) this.st.maps.push({ iova: Number(iova), size: Number(size) });
  }

  private maps(): void {
    const size = BigInt(this.pick([0x1000, 0x2000, 0x10000]));
    this.line(`maps flags=3 vaddr=${this.vaddr()} iova=${hex(this.iova())} size=${hex(size)} count=${this.rng.range(2, 40)} vaddr_step=${this.pick([0, 0x1000, 0x10000])}`);
  }

  private unmap(): void {
    const r = this.rng.float();
    const m = this.st.maps.length ? this.pick(this.st.maps) : null;
    let iova: bigint;
    let size: bigint;
    if (m && r < 0.6) {
      iova = BigInt(m.iova);
      size = BigInt(this.pick([m.size, m.size + PAGE, m.size - PAGE, 0x10000000]));
    } else {
      iova = this.iova();
      size = this.size();
    }
    const flags = this.pick([0, 0, 0, 1, 2, 4, 6, 3]);
    if (flags & 2 && this.rng.chance(0.8)) {
      iova = 0n;
      size = 0n;
    }
    let extra = "";
    if (flags & 1) extra = ` ${this.bitmapArgs(size)}`;
    this.line(`unmap flags=${flags} iova=${hex(iova)} size=${hex(size)}${extra}`);
    if (flags === 0 || flags === 2) this.st.maps = this.st.maps.filter((x) => flags === 2 ? false : !(BigInt(x.iova) >= iova && BigInt(x.iova) < iova + size));
  }

  /** `pgsize= bitmap_size= data= show=` for a bitmap over `size` bytes of IOVA, sometimes wrong. */
  private bitmapArgs(size: bigint): string {
    const pages = size > 0n && size < 0x100000000n ? Number(size) / PAGE : 64;
    const need = Math.ceil(Math.max(1, pages) / 64) * 8;
    const bsize = this.pick([need, need, need, need + 8, Math.max(0, need - 8), 0, 0x10000001]);
    const pgsize = this.pick([0x1000, 0x1000, 0x1000, 0x1000, 0x2000, 0, 0x800]);
    const data = this.rng.chance(0.85) ? BITMAPS + this.rng.int(0x100) * 8 + this.pick([0, 0, 0, 4]) : this.pick([0, 0x3fff000 - 8, ARENA + 0x1000]);
    const show = Math.min(bsize, 256) + 8;
    return `pgsize=${hex(pgsize)} bitmap_size=${bsize} data=+${hex(data)} show=${show}`;
  }

  private dirty(): void {
    const r = this.rng.float();
    if (r < 0.2) {
      this.line(`dirty flags=${this.pick([1, 1, 1, 2, 0, 3, 8])}`);
      return;
    }
    const m = this.st.maps.length ? this.pick(this.st.maps) : null;
    let iova = this.iova();
    let size = this.size();
    if (m && this.rng.chance(0.6)) {
      iova = BigInt(m.iova);
      size = BigInt(this.pick([m.size, m.size + 0x10000, m.size - PAGE]));
    }
    if (this.rng.chance(0.05)) size = (1n << 64n) - iova; // a range that ends exactly at 2^64
    const argsz = this.rng.chance(0.05) ? ` argsz=${this.pick([8, 47, 16])}` : "";
    this.line(`dirty flags=4 iova=${hex(iova)} size=${hex(size & 0xffffffffffffffffn)} ${this.bitmapArgs(size)}${argsz}`);
  }

  private memory(): void {
    const r = this.rng.float();
    const a = this.rng.int(0x300) * PAGE;
    const n = this.rng.range(1, 32) * PAGE;
    if (r < 0.45) {
      if (this.st.isClean(a, n)) {
        this.line(`fill addr=+${hex(a)} size=${hex(n)} byte=${this.rng.int(256)}`);
        this.st.written.push([a, a + n]);
      }
    } else if (r < 0.8) {
      this.line(`mprotect addr=+${hex(a)} size=${hex(n)} prot=${this.pick(["r", "r", "none", "rw"])}`);
      this.st.tainted.push([a, a + n]);
    } else if (r < 0.9) {
      this.line(`munmap addr=+${hex(a)} size=${hex(n)}`);
      this.st.tainted.push([a, a + n]);
    } else {
      this.line(`peek addr=+${hex(this.rng.chance(0.5) ? a : BITMAPS)} size=${this.pick([8, 64, 300])}`);
    }
  }

  /**
   * The M1 pattern in one go: a 2 MiB block gets a page table (a VMA boundary inside it, or a
   * write into its huge zero page), so its never-written pages are small zero pages; something
   * is charged; the limit drops below locked_vm with CAP_IPC_LOCK off; then read-only pins
   * there (free on 6.1, charged on 6.12) and next to written pages.
   */
  private smallZeroPins(): void {
    const blk = 0x1000000 + this.rng.int(8) * 0x200000;
    if (this.rng.chance(0.5)) {
      this.line(`mprotect addr=+${hex(blk + 0x1ff000)} size=0x1000 prot=r`);
      this.st.tainted.push([blk + 0x1ff000, blk + 0x200000]);
    } else if (this.st.isClean(blk + 0x80000, PAGE)) {
      this.line(`peek addr=+${hex(blk)} size=8`);
      this.line(`fill addr=+${hex(blk + 0x80000)} size=0x1000 byte=${this.rng.range(1, 255)}`);
    }
    const iova = 0x20000000 + this.rng.int(0x100) * 0x100000;
    this.line(`map flags=3 vaddr=+${hex(blk + this.rng.int(16) * PAGE)} iova=${hex(iova)} size=${hex(this.rng.range(1, 4) * PAGE)}`);
    this.line(`memlock bytes=${hex(this.pick([0, 0, 0x1000, 0x2000]))}`);
    this.line("cap_ipc_lock on=0");
    for (let i = this.rng.range(1, 3); i > 0; i--) {
      const off = this.pick([0x10000, 0x7e000, 0x80000, 0x100000, 0x1f0000]) + this.rng.int(4) * PAGE;
      this.line(`map flags=1 vaddr=+${hex(blk + off)} iova=${hex(iova + 0x10000 * (i + 1))} size=${hex(this.rng.range(1, 8) * PAGE)}`);
    }
    this.line("locked");
  }

  /** The M1 pattern: charge something, drop the limit below locked_vm, then pin pages that may cost nothing. */
  private memlockEdge(): void {
    const r = this.rng.float();
    if (r < 0.15) this.smallZeroPins();
    else if (r < 0.4) this.line(`memlock bytes=${hex(this.pick([0, 0x1000, 0x4000, 0x10000, 0x100000, 0x400000]))}`);
    else if (r < 0.6) this.line(`cap_ipc_lock on=${this.rng.int(2)}`);
    else if (r < 0.7) this.line("memlock bytes=unlimited");
    else {
      const a = 0x1000000 + this.rng.int(0x100) * PAGE;
      const size = this.pick([0x1000, 0x4000, 0x200000, 0x10000]);
      const iova = 0x10000000 + this.rng.int(0x100) * 0x10000;
      this.line(`map flags=1 vaddr=+${hex(a)} iova=${hex(iova)} size=${hex(size)}`);
      this.st.maps.push({ iova, size });
    }
  }

  private call(): void {
    const r = this.rng.float();
    if (r < 0.3) this.map();
    else if (r < 0.34) this.maps();
    else if (r < 0.52) this.unmap();
    else if (r < 0.66) this.dirty();
    else if (r < 0.78) this.memory();
    else if (r < 0.88) this.memlockEdge();
    else if (r < 0.92) this.line(`info argsz=${this.pick([24, 16, 100, 116, 120, 4096, 4096])}`);
    else if (r < 0.95) this.line(`ext id=${this.pick([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 0x100000000])}`);
    else this.line("locked");
  }

  /** One `case`: a fresh world, sometimes a TYPE1 (v1) container. */
  caseBlock(name: string, calls: number): void {
    this.st = new CaseState();
    this.line(`case ${name}${this.rng.chance(0.1) ? " iommu=1" : ""}`);
    if (this.rng.chance(0.5)) {
      this.line(`cap_ipc_lock on=0`);
      this.line(`memlock bytes=${hex(this.pick([0x10000, 0x100000, 0x400000, 0x1000000]))}`);
    }
    for (let i = 0; i < calls; i++) this.call();
    this.line("locked");
  }

  text(): string {
    return this.out.join("\n") + "\n";
  }
}

function main(argv: string[]): void {
  const opt = (name: string, def: number): number => {
    const i = argv.indexOf(`--${name}`);
    return i >= 0 ? Number(argv[i + 1]) : def;
  };
  const seed = opt("seed", 1);
  const cases = opt("cases", 30);
  const calls = opt("calls", 40);
  const rng = new Rng(seed);
  const g = new Gen(rng);
  for (let c = 0; c < cases; c++) g.caseBlock(`g${seed}-${c}`, calls);
  process.stdout.write(g.text());
}

main(process.argv.slice(2));
