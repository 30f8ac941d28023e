/**
 * print_buf() of the oracle's runner: a user buffer as hex (at most 256 bytes), else
 * `fnv:HASH,pop:N` (64-bit FNV-1a and popcount), `?` when the process cannot read all of
 * it, `-` for an empty one. Works on sparse memory: never-written frames hash as zeros
 * without visiting each byte.
 */
import type { Process } from "../process/process";

const POP = new Uint8Array(256).map((_, i) => {
  let n = 0;
  for (let v = i; v; v &= v - 1) n++;
  return n;
});

const FNV_OFFSET = 0xcbf29ce484222325n;
const FNV_PRIME = 0x100000001b3n;
const M64 = 0xffff_ffff_ffff_ffffn;
const TWO32 = 0x1_0000_0000;

/** FNV-1a 64 state as two u32 halves (BigInt per byte would be far too slow). */
class Fnv {
  hi = Number(FNV_OFFSET >> 32n);
  lo = Number(FNV_OFFSET & 0xffff_ffffn);

  bytes(b: Uint8Array): void {
    let hi = this.hi;
    let lo = this.lo;
    for (let i = 0; i < b.length; i++) {
      lo = (lo ^ b[i]) >>> 0;
      // h * (2^40 + 0x1b3) mod 2^64
      const l = lo * 0x1b3;
      const carry = Math.floor(l / TWO32);
      const h2 = hi * 0x1b3 + carry + ((lo << 8) >>> 0);
      hi = h2 % TWO32;
      lo = l % TWO32;
    }
    this.hi = hi;
    this.lo = lo;
  }

  /** n zero bytes: h ^ 0 = h, so h *= prime^n. */
  zeros(n: number): void {
    let h = (BigInt(this.hi) << 32n) | BigInt(this.lo);
    let base = FNV_PRIME;
    let e = BigInt(n);
    while (e > 0n) {
      if (e & 1n) h = (h * base) & M64;
      base = (base * base) & M64;
      e >>= 1n;
    }
    this.hi = Number(h >> 32n);
    this.lo = Number(h & 0xffff_ffffn);
  }

  hex(): string {
    return this.hi.toString(16).padStart(8, "0") + this.lo.toString(16).padStart(8, "0");
  }
}

/** What print_buf() prints after `label=` for the `n` bytes at `a` of `proc`. */
export function formatUserBuffer(proc: Process, a: bigint, n: bigint): string {
  if (n === 0n) return "-";
  const mem = proc.mm?.memory;
  if (!mem || a > BigInt(Number.MAX_SAFE_INTEGER) || n > BigInt(Number.MAX_SAFE_INTEGER)) return "?";
  const addr = Number(a);
  const len = Number(n);
  if (mem.accessibleLength(addr, len, false) < len) return "?";
  mem.backing.fault(addr, len, false); // process_vm_readv faults the pages in for reading
  if (len <= 256) {
    const b = mem.readRaw(addr, len);
    return Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
  }
  const h = new Fnv();
  let pop = 0;
  for (const s of mem.spans(addr, len, false)) {
    if (s.ptr === 0) {
      h.zeros(s.len);
      continue;
    }
    const b = mem.core.u8.subarray(s.ptr, s.ptr + s.len);
    h.bytes(b);
    for (let i = 0; i < b.length; i++) pop += POP[b[i]];
  }
  return `fnv:${h.hex()},pop:${pop}`;
}
