/**
 * A tiny stand-in for a process's memory for unit tests of rules that do not depend on
 * memory (tree, messages, features): VMAs backed by shared "memfd" byte arrays, with
 * copy_from_user/copy_to_user semantics and find_vma. The live-update flow and the oracle
 * replays run on the real simulated process (src/process) instead.
 */
import type { UserAccess } from "../../src/process/file";
import type { VhostVma, VmaSource } from "../../src/vhost/vma";

export class Memfd {
  readonly bytes: Uint8Array;
  constructor(size: number) {
    this.bytes = new Uint8Array(size);
  }
}

interface FakeVma {
  start: bigint;
  end: bigint;
  file: Memfd | null;
  offset: number;
  shared: boolean;
  bytes: Uint8Array;
  writable: boolean;
}

export class FakeMm implements UserAccess, VmaSource {
  private vmas: FakeVma[] = [];

  /** mmap(addr, len, PROT_READ|PROT_WRITE, MAP_SHARED, memfd, offset), or anonymous private memory without `file`. */
  mmap(addr: bigint, len: number, file: Memfd | null = null, offset = 0, writable = true): bigint {
    const bytes = file === null ? new Uint8Array(len) : file.bytes.subarray(offset, offset + len);
    this.vmas.push({ start: addr, end: addr + BigInt(len), file, offset, shared: file !== null, bytes, writable });
    this.vmas.sort((a, b) => (a.start < b.start ? -1 : 1));
    return addr;
  }

  munmap(addr: bigint): void {
    this.vmas = this.vmas.filter((v) => v.start !== addr);
  }

  findVma(addr: bigint): VhostVma | null {
    const v = this.vmas.find((x) => x.end > addr);
    if (v === undefined) return null;
    return { start: v.start, end: v.end, sharedFile: v.shared, file: v.file, fileOffset: BigInt(v.offset) };
  }

  private at(addr: bigint): FakeVma | undefined {
    return this.vmas.find((v) => v.start <= addr && addr < v.end);
  }

  copyFromUser(addr: bigint, len: number): Uint8Array | null {
    const out = new Uint8Array(len);
    for (let i = 0; i < len; ) {
      const a = addr + BigInt(i);
      const v = this.at(a);
      if (v === undefined) return null;
      const off = Number(a - v.start);
      const n = Math.min(len - i, v.bytes.length - off);
      out.set(v.bytes.subarray(off, off + n), i);
      i += n;
    }
    return out;
  }

  copyToUser(addr: bigint, data: Uint8Array): number {
    for (let i = 0; i < data.length; ) {
      const a = addr + BigInt(i);
      const v = this.at(a);
      if (v === undefined || !v.writable) return data.length - i;
      const off = Number(a - v.start);
      const n = Math.min(data.length - i, v.bytes.length - off);
      v.bytes.set(data.subarray(i, i + n), off);
      i += n;
    }
    return 0;
  }
}
