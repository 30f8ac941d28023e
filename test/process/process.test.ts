import { Process, PROT_NONE, PROT_READ, PROT_WRITE, PAGE_SIZE, FRAME_SIZE, GUP_LINUX_6_1, GUP_LINUX_6_2 } from "../../src/process";
import { Errno } from "../../src/uapi/errno";
import { Rng } from "../../src/util/random";

/**
 * An independent naive model: one entry per page (prot or undefined) and a byte Map.
 * Only for small address windows.
 */
class NaiveMem {
  prot = new Map<number, number>();
  bytes = new Map<number, number>();
  readable(a: number): boolean {
    const p = this.prot.get(Math.floor(a / PAGE_SIZE));
    return p !== undefined && p !== PROT_NONE;
  }
  writable(a: number): boolean {
    const p = this.prot.get(Math.floor(a / PAGE_SIZE));
    return p !== undefined && (p & PROT_WRITE) !== 0;
  }
}

const BASE = 0x7000_0000_0000;
const PAGES = 64;

describe("process memory against a per-page reference", () => {
  for (const seed of [1, 2, 3, 4, 5]) {
    it(`seed ${seed}: mmap/munmap/mprotect/copy_{from,to}_user/fill agree`, () => {
      const rng = new Rng(seed);
      const p = new Process();
      const ref = new NaiveMem();
      expect(p.mmap(BASE, PAGES * PAGE_SIZE, PROT_READ | PROT_WRITE).ret).toBe(BASE);
      for (let i = 0; i < PAGES; i++) ref.prot.set(BASE / PAGE_SIZE + i, PROT_READ | PROT_WRITE);
      for (let step = 0; step < 400; step++) {
        const a = BASE + rng.int(PAGES * PAGE_SIZE + 2 * PAGE_SIZE) - PAGE_SIZE;
        const len = rng.int(3 * PAGE_SIZE) + 1;
        const op = rng.int(6);
        if (op === 0) {
          const pa = Math.floor(a / PAGE_SIZE) * PAGE_SIZE;
          const prot = [PROT_NONE, PROT_READ, PROT_READ | PROT_WRITE][rng.int(3)];
          const r = p.mprotect(pa, len, prot);
          // Reference: apply page by page until a hole (ENOMEM), like do_mprotect_pkey.
          let want = 0;
          for (let pg = pa / PAGE_SIZE; pg < Math.ceil((pa + len) / PAGE_SIZE); pg++) {
            if (!ref.prot.has(pg)) {
              want = Errno.ENOMEM;
              break;
            }
            ref.prot.set(pg, prot);
          }
          expect(r.errno).toBe(want);
        } else if (op === 1 && rng.chance(0.3)) {
          const pa = Math.floor(a / PAGE_SIZE) * PAGE_SIZE;
          expect(p.munmap(pa, len).errno).toBe(0);
          for (let pg = pa / PAGE_SIZE; pg < Math.ceil((pa + len) / PAGE_SIZE); pg++) {
            ref.prot.delete(pg);
            for (let b = 0; b < PAGE_SIZE; b++) ref.bytes.delete(pg * PAGE_SIZE + b);
          }
        } else if (op === 1) {
          const pa = Math.floor(a / PAGE_SIZE) * PAGE_SIZE;
          const r = p.mmap(pa, len, PROT_READ | PROT_WRITE);
          let free = true;
          for (let pg = pa / PAGE_SIZE; pg < Math.ceil((pa + len) / PAGE_SIZE); pg++) if (ref.prot.has(pg)) free = false;
          expect(r.errno).toBe(free ? 0 : Errno.EEXIST);
          if (free) for (let pg = pa / PAGE_SIZE; pg < Math.ceil((pa + len) / PAGE_SIZE); pg++) ref.prot.set(pg, PROT_READ | PROT_WRITE);
        } else if (op === 2) {
          const data = rng.fill(new Uint8Array(len));
          const notCopied = p.copyToUser(BigInt(a), data);
          let n = 0;
          while (n < len && ref.writable(a + n)) n++;
          expect(notCopied).toBe(len - n);
          for (let i = 0; i < n; i++) ref.bytes.set(a + i, data[i]);
        } else if (op === 3) {
          const got = p.copyFromUser(BigInt(a), len);
          let readable = true;
          for (let i = 0; i < len; i++) if (!ref.readable(a + i)) readable = false;
          if (!readable) expect(got).toBeNull();
          else {
            const want = new Uint8Array(len);
            for (let i = 0; i < len; i++) want[i] = ref.bytes.get(a + i) ?? 0;
            expect(got).toEqual(want);
          }
        } else if (op === 4) {
          const byte = rng.int(256);
          const r = p.fill(a, len, byte);
          let writable = true;
          for (let i = 0; i < len; i++) if (!ref.writable(a + i)) writable = false;
          expect(r.errno).toBe(writable ? 0 : Errno.EFAULT);
          if (writable) for (let i = 0; i < len; i++) ref.bytes.set(a + i, byte);
        } else {
          const write = rng.chance(0.5);
          const pa = Math.floor(a / PAGE_SIZE) * PAGE_SIZE;
          const max = rng.int(8) + 1;
          const run = p.mm!.memory.pinRun(pa, max, write);
          const ok = (pg: number): boolean => (write ? ref.writable(pg * PAGE_SIZE) : ref.readable(pg * PAGE_SIZE));
          if (!ok(pa / PAGE_SIZE)) expect(run).toBe(-Errno.EFAULT);
          else {
            expect(typeof run).toBe("object");
            const n = (run as { npages: number }).npages;
            expect(n).toBeGreaterThanOrEqual(1);
            expect(n).toBeLessThanOrEqual(max);
            for (let i = 0; i < n; i++) expect(ok(pa / PAGE_SIZE + i)).toBe(true);
          }
        }
      }
    });
  }
});

/**
 * UserMemory caches the last settled page it accessed (a one-page software TLB) and serves
 * small accesses there without any check. Small accesses concentrated on a few pages hit it
 * nearly every time; the reference must still see every munmap, mprotect, re-mmap and
 * file mapping take effect on the very next access.
 */
describe("the one-page access cache against the per-page reference", () => {
  const HOT = 4;
  for (const seed of [11, 12, 13, 14, 15, 16]) {
    it(`seed ${seed}: small reads and writes interleaved with munmap/mprotect/mmap agree`, () => {
      const rng = new Rng(seed);
      const p = new Process();
      const ref = new NaiveMem();
      expect(p.mmap(BASE, HOT * PAGE_SIZE, PROT_READ | PROT_WRITE).ret).toBe(BASE);
      for (let i = 0; i < HOT; i++) ref.prot.set(BASE / PAGE_SIZE + i, PROT_READ | PROT_WRITE);
      const dst = new Uint8Array(64);
      let page = 0;
      for (let step = 0; step < 3000; step++) {
        // Runs of accesses to one page, as an ioctl's write-then-copy-in makes.
        if (rng.chance(0.3)) page = rng.int(HOT);
        const a = BASE + page * PAGE_SIZE + rng.int(PAGE_SIZE - 64);
        const len = rng.int(64) + 1;
        const op = rng.int(20);
        const readable = (): boolean => [...Array(len).keys()].every((i) => ref.readable(a + i));
        const writable = (): boolean => [...Array(len).keys()].every((i) => ref.writable(a + i));
        const pa = BASE + page * PAGE_SIZE;
        if (op === 0) {
          // Mostly back to read-write: only a writable page can be cached.
          const prot = [PROT_NONE, PROT_READ, PROT_READ | PROT_WRITE, PROT_READ | PROT_WRITE][rng.int(4)];
          expect(p.mprotect(pa, PAGE_SIZE, prot).errno).toBe(ref.prot.has(page + BASE / PAGE_SIZE) ? 0 : Errno.ENOMEM);
          if (ref.prot.has(page + BASE / PAGE_SIZE)) ref.prot.set(page + BASE / PAGE_SIZE, prot);
        } else if (op === 1 && rng.chance(0.5)) {
          expect(p.munmap(pa, PAGE_SIZE).errno).toBe(0);
          ref.prot.delete(page + BASE / PAGE_SIZE);
          for (let b = 0; b < PAGE_SIZE; b++) ref.bytes.delete(pa + b);
        } else if (op <= 2) {
          const r = p.mmap(pa, PAGE_SIZE, PROT_READ | PROT_WRITE);
          const free = !ref.prot.has(page + BASE / PAGE_SIZE);
          expect(r.errno).toBe(free ? 0 : Errno.EEXIST);
          if (free) ref.prot.set(page + BASE / PAGE_SIZE, PROT_READ | PROT_WRITE);
        } else if (op === 3 && rng.chance(0.2) && !ref.prot.has(page + BASE / PAGE_SIZE)) {
          // A shared file page in the hole: its bytes are the file's (zeros), and every access
          // from now on takes the file-aware path.
          const memfd = p.memfdCreate("cache").ret;
          expect(p.ftruncate(memfd, PAGE_SIZE).errno).toBe(0);
          expect(p.mmapFd(pa, PAGE_SIZE, PROT_READ | PROT_WRITE, 1 /* MAP_SHARED */, memfd).ret).toBe(pa);
          expect(p.close(memfd).errno).toBe(0);
          ref.prot.set(page + BASE / PAGE_SIZE, PROT_READ | PROT_WRITE);
        } else if (op < 10) {
          const data = rng.fill(new Uint8Array(len));
          const w = rng.chance(0.5) ? p.write(BigInt(a), data).errno : p.copyToUser(BigInt(a), data) === 0 ? 0 : Errno.EFAULT;
          const ok = writable();
          if (ok) for (let i = 0; i < len; i++) ref.bytes.set(a + i, data[i]);
          // copy_to_user writes up to the first unwritable byte: take the reference from the model then.
          else for (let i = 0; i < len && ref.writable(a + i); i++) ref.bytes.set(a + i, data[i]);
          expect(w).toBe(ok ? 0 : Errno.EFAULT); // DBG
        } else {
          const want = new Uint8Array(len);
          for (let i = 0; i < len; i++) want[i] = ref.bytes.get(a + i) ?? 0;
          if (rng.chance(0.5)) {
            const got = p.copyFromUserInto(BigInt(a), dst, len);
            expect(got).toBe(readable());
            if (got) expect(dst.subarray(0, len)).toEqual(want);
          } else {
            const got = p.read(a, len);
            if (!readable()) expect(got).toBeNull();
            else expect(got).toEqual(want);
          }
        }
      }
    });
  }
});

describe("the one-page access cache, invalidation by each of its counters", () => {
  const bytes = new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8]);
  const cachedPage = (): { p: Process; mem: NonNullable<Process["mm"]>["memory"] } => {
    const p = new Process();
    expect(p.mmap(BASE, 4 * PAGE_SIZE, PROT_READ | PROT_WRITE).ret).toBe(BASE);
    expect(p.write(BASE + 8, bytes).errno).toBe(0); // fills the cache
    expect(p.read(BASE + 8, 8)).toEqual(bytes);
    return { p, mem: p.mm!.memory };
  };
  it("frames dropped without a VMA change (discard) read as zeros", () => {
    const { p, mem } = cachedPage();
    mem.discard(BASE, BASE + PAGE_SIZE);
    const dst = new Uint8Array(8);
    expect(p.copyFromUserInto(BigInt(BASE + 8), dst, 8)).toBe(true);
    expect(dst).toEqual(new Uint8Array(8));
  });
  it("a page that lost its real backing without a VMA change is faulted again", () => {
    const { p, mem } = cachedPage();
    mem.backing.unmap(BASE, BASE + PAGE_SIZE);
    expect(mem.backing.settled(BASE, PAGE_SIZE)).toBe(false);
    expect(p.write(BASE + 8, bytes).errno).toBe(0);
    expect(mem.backing.settled(BASE, PAGE_SIZE)).toBe(true); // the write faulted it in again
  });
});

describe("process syscalls", () => {
  it("returns Linux errnos for bad munmap/mprotect arguments", () => {
    const p = new Process();
    expect(p.munmap(0x1001, 0x1000).errno).toBe(Errno.EINVAL);
    expect(p.munmap(0x1000, 0).errno).toBe(Errno.EINVAL);
    expect(p.mprotect(0x1001, 0x1000, PROT_READ).errno).toBe(Errno.EINVAL);
    expect(p.mprotect(0x1000, 0, PROT_READ).errno).toBe(0);
    expect(p.mprotect(0x1000, 0x1000, PROT_READ).errno).toBe(Errno.ENOMEM);
    expect(p.mprotect(0x1000, 0x1000, 0x100).errno).toBe(Errno.EINVAL);
    expect(p.ioctl(3, 0).errno).toBe(Errno.EBADF);
    expect(p.open("/dev/nothing").errno).toBe(Errno.ENOENT);
  });

  it("keeps a 1 TiB mapping sparse: only written frames exist, untouched bytes read zero", () => {
    const p = new Process();
    const a = p.mmap(undefined, 2 ** 40).ret;
    expect(a).toBeGreaterThan(0);
    expect(p.fill(a + 2 ** 39, 10, 0x5a).errno).toBe(0);
    expect(p.mm!.memory.frameCount).toBe(1);
    expect(p.read(a + 2 ** 39 - 2, 4)).toEqual(new Uint8Array([0, 0, 0x5a, 0x5a]));
    expect(p.read(a + 12345 * FRAME_SIZE, 8)).toEqual(new Uint8Array(8));
    expect(p.mm!.memory.frameCount).toBe(1);
    // munmap drops the frame; a new mapping there reads zero.
    expect(p.munmap(a, 2 ** 40).errno).toBe(0);
    expect(p.mm!.memory.frameCount).toBe(0);
    expect(p.mmap(a, 2 ** 40).ret).toBe(a);
    expect(p.read(a + 2 ** 39, 4)).toEqual(new Uint8Array(4));
  });

  it("dispatches ioctls to FileOps and releases on last close", () => {
    const p = new Process();
    let released = 0;
    p.registerDevice("/dev/x", () => ({ ioctl: (_t, cmd, arg) => (cmd === 7 ? Number(arg) : -Errno.ENOTTY), release: () => released++ }));
    const fd = p.open("/dev/x").ret;
    expect(fd).toBe(3);
    expect(p.ioctl(fd, 7, 42n)).toEqual({ ret: 42, errno: 0 });
    expect(p.ioctl(fd, 8)).toEqual({ ret: -1, errno: Errno.ENOTTY });
    expect(p.close(fd).errno).toBe(0);
    expect(released).toBe(1);
    expect(p.close(fd).errno).toBe(Errno.EBADF);
  });

  it("charges locked_vm against RLIMIT_MEMLOCK unless bypassed", () => {
    const p = new Process();
    const mm = p.mm!;
    expect(mm.accountLockedVm(8, true, 0x8000n, false)).toBe(0);
    expect(mm.accountLockedVm(1, true, 0x8000n, false)).toBe(-Errno.ENOMEM);
    expect(mm.accountLockedVm(1, true, 0x8000n, true)).toBe(0);
    expect(p.vmLckKb()).toBe(36);
    expect(mm.accountLockedVm(9, false, 0n, false)).toBe(0);
    expect(p.vmLckKb()).toBe(0);
    expect(mm.underflowWarnings).toBe(0);
  });
});

describe("page backing stays small", () => {
  it("read-faulting 1 TiB of untouched memory keeps a handful of intervals", () => {
    const p = new Process();
    const a = p.mmap(undefined, 2 ** 40).ret;
    const run = p.mm!.memory.pinRun(a, 2 ** 28, false);
    expect(typeof run).toBe("object");
    // Untouched THP-eligible memory pins the huge zero page: charged (not reserved).
    expect(run).toMatchObject({ reserved: false });
    expect(p.mm!.memory.backing.pmdCount).toBeLessThanOrEqual(2);
  });
});

describe("GUP per kernel (GupBehaviour)", () => {
  it("6.1 pins the small zero page as a reserved pfn; 6.2+ unshares it, for long-term read pins only", () => {
    for (const [gup, reservedWhenLongterm] of [
      [GUP_LINUX_6_1, true],
      [GUP_LINUX_6_2, false],
    ] as const) {
      const p = new Process({ gup });
      const a = 0x1000_0000;
      expect(p.mmap(a, 4 << 20).ret).toBe(a);
      // A VMA boundary inside the first 2 MiB block: no huge zero page there.
      expect(p.mprotect(a + 0x1ff000, 0x1000, PROT_READ).errno).toBe(0);
      const longterm = p.mm!.memory.pinRun(a, 4, false, true);
      expect(typeof longterm !== "number" && longterm.reserved).toBe(reservedWhenLongterm);
      const shortterm = p.mm!.memory.pinRun(a + 0x10000, 4, false, false);
      expect(typeof shortterm !== "number" && shortterm.reserved).toBe(true);
    }
  });

  it("6.2+ unsharing a huge zero block makes only the pinned pages real (not a whole THP)", () => {
    const p = new Process({ gup: GUP_LINUX_6_2 });
    const a = 0x1000_0000;
    expect(p.mmap(a, 4 << 20).ret).toBe(a);
    expect(p.read(a, 8)).toEqual(new Uint8Array(8)); // read fault: the huge zero page
    const run = p.mm!.memory.pinRun(a, 2, false, true);
    expect(run).toMatchObject({ npages: 2, reserved: false });
    // The block was split: its other pages are small zero pages (reserved for a plain read pin).
    expect(p.mm!.memory.pinRun(a + 0x2000, 4, false, false)).toMatchObject({ npages: 4, reserved: true });
  });
});
