/**
 * memfd, file mappings, read/write on files and fd passing in the simulated process:
 * MAP_SHARED mappings see the same pages in every process, MAP_PRIVATE ones copy a page
 * on its first write (also when pinned for write), pages past EOF fault, and the file
 * lives until its last fd and its last mapping are gone.
 */
import { MAP_PRIVATE, MAP_SHARED, PAGE_SIZE, PROT_READ, PROT_WRITE, Process, fileCount } from "../../src/process";
import { WasmCore } from "../../src/wasm/core";
import { Errno } from "../../src/uapi/errno";
import { Rng } from "../../src/util/random";

const RW = PROT_READ | PROT_WRITE;
const bytes = (...b: number[]) => Uint8Array.from(b);

/** Two processes on one Wasm core (as two processes share the machine's RAM), a memfd of `size` in the first. */
function world(size = 16 * PAGE_SIZE) {
  const core = new WasmCore();
  const a = new Process({ core });
  const b = new Process({ core });
  const fd = a.memfdCreate("guest").ret;
  expect(a.ftruncate(fd, size)).toEqual({ ret: 0, errno: 0 });
  const buf = a.mmap(undefined, PAGE_SIZE).ret;
  return { core, a, b, fd, buf, size };
}

test("two MAP_SHARED mappings and write(2)/read(2) see the same pages", () => {
  const { a, fd, buf } = world();
  const m1 = a.mmapFd(undefined, 4 * PAGE_SIZE, RW, MAP_SHARED, fd, 0).ret;
  const m2 = a.mmapFd(undefined, 2 * PAGE_SIZE, RW, MAP_SHARED, fd, 2 * PAGE_SIZE).ret;
  expect(m1).toBeGreaterThan(0);
  expect(m2).not.toBe(m1);
  expect(a.write(m1 + 2 * PAGE_SIZE + 5, bytes(1, 2, 3)).errno).toBe(0);
  expect(a.read(m2 + 5, 3)).toEqual(bytes(1, 2, 3));
  // write(2) at f_pos lands in both mappings.
  expect(a.write(buf, bytes(9, 8, 7, 6)).errno).toBe(0);
  expect(a.lseek(fd, 2 * PAGE_SIZE + 4, 0)).toEqual({ ret: 2 * PAGE_SIZE + 4, errno: 0 });
  expect(a.writeFd(fd, buf, 4)).toEqual({ ret: 4, errno: 0 });
  expect(a.read(m1 + 2 * PAGE_SIZE + 4, 5)).toEqual(bytes(9, 8, 7, 6, 0));
  // read(2) returns what the mappings wrote.
  expect(a.lseek(fd, 2 * PAGE_SIZE + 3, 0).ret).toBe(2 * PAGE_SIZE + 3);
  expect(a.readFd(fd, buf + 100, 6)).toEqual({ ret: 6, errno: 0 });
  expect(a.read(buf + 100, 6)).toEqual(bytes(0, 9, 8, 7, 6, 0));
  expect(a.memfd(fd)!.readAt(2 * PAGE_SIZE + 4, 2)).toEqual(bytes(9, 8));
});

test("write(2) extends the file; read(2) stops at EOF; bad buffers fault", () => {
  const { a, fd, buf } = world(0);
  a.write(buf, bytes(5, 6, 7));
  expect(a.writeFd(fd, buf, 3)).toEqual({ ret: 3, errno: 0 });
  expect(a.memfd(fd)!.size).toBe(3);
  expect(a.lseek(fd, 0, 0).ret).toBe(0);
  expect(a.readFd(fd, buf + 8, 100)).toEqual({ ret: 3, errno: 0 });
  expect(a.readFd(fd, buf + 8, 100)).toEqual({ ret: 0, errno: 0 });
  expect(a.writeFd(fd, 0x10, 4)).toEqual({ ret: -1, errno: Errno.EFAULT });
  expect(a.lseek(fd, 0, 0).ret).toBe(0);
  expect(a.readFd(fd, 0x10, 4)).toEqual({ ret: -1, errno: Errno.EFAULT });
  expect(a.writeFd(99, buf, 1)).toEqual({ ret: -1, errno: Errno.EBADF });
  expect(a.mmapFd(undefined, PAGE_SIZE, RW, MAP_SHARED, fd, 1)).toEqual({ ret: -1, errno: Errno.EINVAL });
  expect(a.mmapFd(undefined, PAGE_SIZE, RW, MAP_SHARED | MAP_PRIVATE, fd, 0)).toEqual({ ret: -1, errno: Errno.EINVAL });
});

test("a second process that receives the fd maps the same pages at another address", () => {
  const { a, b, fd } = world();
  const ma = a.mmapFd(undefined, 8 * PAGE_SIZE, RW, MAP_SHARED, fd, 0).ret;
  const fdB = a.sendFd(fd, b).ret;
  expect(fdB).toBe(3);
  expect(fileCount(a.memfd(fd)!)).toBe(3); // two fds, one mapping
  const mb = b.mmapFd(0x5000_0000_0000, 8 * PAGE_SIZE, RW, MAP_SHARED, fdB, 0).ret;
  expect(mb).toBe(0x5000_0000_0000);
  a.write(ma + 0x1234, bytes(0xaa, 0xbb));
  expect(b.read(mb + 0x1234, 2)).toEqual(bytes(0xaa, 0xbb));
  b.write(mb + 7 * PAGE_SIZE, bytes(0xcc));
  expect(a.read(ma + 7 * PAGE_SIZE, 1)).toEqual(bytes(0xcc));
  // Same file position: the open file is shared, not reopened.
  expect(a.lseek(fd, 100, 0).ret).toBe(100);
  expect(b.lseek(fdB, 0, 1).ret).toBe(100);
  // Pinning either mapping pins the file's pages: same physical addresses, never the zero page.
  const pa = a.mm!.memory.pinRun(ma + PAGE_SIZE, 4, false);
  const pb = b.mm!.memory.pinRun(mb + PAGE_SIZE, 4, false);
  expect(pa).toEqual(pb);
  expect(pa).toMatchObject({ npages: 4, reserved: false });
  // The sender exits: the receiver's fd and mapping keep the file and its bytes.
  a.exit();
  expect(fileCount(b.memfd(fdB)!)).toBe(2);
  expect(b.read(mb + 0x1234, 2)).toEqual(bytes(0xaa, 0xbb));
});

test("the file is released with its last reference, fd or mapping", () => {
  const { a, b, fd } = world();
  const f = a.memfd(fd)!;
  const m = a.mmapFd(undefined, 4 * PAGE_SIZE, RW, MAP_SHARED, fd, 0).ret;
  a.write(m, bytes(1));
  const fdB = a.sendFd(fd, b).ret;
  expect(a.close(fd).errno).toBe(0);
  expect(b.close(fdB).errno).toBe(0);
  expect(fileCount(f)).toBe(1);
  expect(a.read(m, 1)).toEqual(bytes(1));
  // Splitting the mapping takes a reference per piece; unmapping all of them drops the last.
  expect(a.munmap(m + PAGE_SIZE, PAGE_SIZE).errno).toBe(0);
  expect(fileCount(f)).toBe(2);
  expect(a.read(m + 2 * PAGE_SIZE, 1)).toEqual(bytes(0));
  expect(f.frameCount).toBe(1);
  expect(a.munmap(m, 4 * PAGE_SIZE).errno).toBe(0);
  expect(fileCount(f)).toBe(0);
  expect(f.frameCount).toBe(0);
});

test("pages past EOF fault; growing the file makes them accessible, shrinking zeroes the tail", () => {
  const { a, fd } = world(PAGE_SIZE + 10);
  const m = a.mmapFd(undefined, 4 * PAGE_SIZE, RW, MAP_SHARED, fd, 0).ret;
  expect(a.write(m + PAGE_SIZE + 4000, bytes(1)).errno).toBe(0); // in the last, partial page
  expect(a.write(m + 2 * PAGE_SIZE, bytes(1))).toEqual({ ret: -1, errno: Errno.EFAULT });
  expect(a.read(m + 2 * PAGE_SIZE, 1)).toBeNull();
  expect(a.ftruncate(fd, 3 * PAGE_SIZE).errno).toBe(0);
  expect(a.write(m + 2 * PAGE_SIZE, bytes(2)).errno).toBe(0);
  expect(a.ftruncate(fd, PAGE_SIZE + 1).errno).toBe(0);
  expect(a.ftruncate(fd, 3 * PAGE_SIZE).errno).toBe(0);
  expect(a.read(m + PAGE_SIZE + 4000, 1)).toEqual(bytes(0));
  expect(a.read(m + 2 * PAGE_SIZE, 1)).toEqual(bytes(0));
});

test("MAP_PRIVATE reads the file until a page is written; a write pin copies the page too", () => {
  const { a, fd } = world();
  const shared = a.mmapFd(undefined, 4 * PAGE_SIZE, RW, MAP_SHARED, fd, 0).ret;
  const priv = a.mmapFd(undefined, 4 * PAGE_SIZE, RW, MAP_PRIVATE, fd, 0).ret;
  a.write(shared, bytes(1, 1));
  a.write(shared + PAGE_SIZE, bytes(2));
  a.write(shared + 2 * PAGE_SIZE, bytes(3));
  expect(a.read(priv, 2)).toEqual(bytes(1, 1));
  // A write to the private mapping copies that page only; the file does not change.
  a.write(priv + 1, bytes(9));
  expect(a.read(priv, 2)).toEqual(bytes(1, 9));
  expect(a.read(shared, 2)).toEqual(bytes(1, 1));
  a.write(shared, bytes(5));
  expect(a.read(priv, 1)).toEqual(bytes(1)); // the copy no longer follows the file
  a.write(shared + PAGE_SIZE, bytes(6));
  expect(a.read(priv + PAGE_SIZE, 1)).toEqual(bytes(6)); // an unwritten page still does
  // pin_user_pages(FOLL_WRITE) breaks COW: the pinned page is the private copy.
  const mem = a.mm!.memory;
  expect(mem.isCowed(priv / PAGE_SIZE + 2)).toBe(false);
  expect(mem.pinRun(priv + 2 * PAGE_SIZE, 1, true)).toMatchObject({ npages: 1, reserved: false });
  expect(mem.isCowed(priv / PAGE_SIZE + 2)).toBe(true);
  a.write(shared + 2 * PAGE_SIZE, bytes(7));
  expect(a.read(priv + 2 * PAGE_SIZE, 1)).toEqual(bytes(3));
  // A read pin does not (the read-only pin of a file page: Linux 6.1's rule).
  expect(mem.pinRun(priv + 3 * PAGE_SIZE, 1, false)).toMatchObject({ npages: 1 });
  expect(mem.isCowed(priv / PAGE_SIZE + 3)).toBe(false);
  // munmap forgets the copies: a new private mapping there reads the file again.
  expect(a.munmap(priv, 4 * PAGE_SIZE).errno).toBe(0);
  expect(a.mmapFd(priv, 4 * PAGE_SIZE, RW, MAP_PRIVATE, fd, 0).ret).toBe(priv);
  expect(a.read(priv, 2)).toEqual(bytes(5, 1));
});

test("mapping a file needs the same Wasm core; only memfds can be mapped", () => {
  const { a, fd } = world();
  const other = new Process();
  const fdO = a.sendFd(fd, other).ret;
  expect(other.mmapFd(undefined, PAGE_SIZE, RW, MAP_SHARED, fdO, 0)).toEqual({ ret: -1, errno: Errno.EINVAL });
  a.registerDevice("/dev/null", () => ({}));
  const nul = a.open("/dev/null").ret;
  expect(a.mmapFd(undefined, PAGE_SIZE, RW, MAP_SHARED, nul, 0)).toEqual({ ret: -1, errno: Errno.ENODEV });
  expect(a.lseek(nul, 0, 0)).toEqual({ ret: -1, errno: 29 });
});

/**
 * Random writes through shared and private mappings in two processes, write(2) at random
 * offsets, munmap/mprotect splits of the mappings, checked against a naive reference: one
 * byte array for the file, and per private mapping a map of copied pages.
 */
/** Index of the first byte where `got` and `want` differ (-1: equal); jest's deep equality is slow on big arrays. */
function firstDifference(got: Uint8Array | null, want: Uint8Array): number {
  if (got === null) return 0;
  if (got.length !== want.length) return Math.min(got.length, want.length);
  for (let i = 0; i < got.length; i++) if (got[i] !== want[i]) return i;
  return -1;
}

describe("file mappings against a naive reference", () => {
  for (const seed of [1, 2, 3, 4]) {
    test(`seed ${seed}`, () => {
      const rng = new Rng(seed);
      const FILE_PAGES = 24;
      const { a, b, fd, buf } = world(FILE_PAGES * PAGE_SIZE);
      const fdB = a.sendFd(fd, b).ret;
      const file = new Uint8Array(FILE_PAGES * PAGE_SIZE);
      interface M {
        p: Process;
        addr: number;
        off: number;
        pages: number;
        shared: boolean;
        copies: Map<number, Uint8Array>;
        live: boolean[];
      }
      const maps: M[] = [];
      const add = (p: Process, pfd: number, shared: boolean) => {
        const pages = rng.range(1, 12);
        const off = rng.int(FILE_PAGES - pages + 1) * PAGE_SIZE;
        const addr = p.mmapFd(undefined, pages * PAGE_SIZE, RW, shared ? MAP_SHARED : MAP_PRIVATE, pfd, off).ret;
        expect(addr).toBeGreaterThan(0);
        maps.push({ p, addr, off, pages, shared, copies: new Map(), live: Array<boolean>(pages).fill(true) });
      };
      add(a, fd, true);
      add(b, fdB, true);
      add(a, fd, false);
      add(b, fdB, false);
      add(b, fdB, true);
      /** What the reference says page `i` of mapping `m` reads. */
      const refPage = (m: M, i: number): Uint8Array =>
        m.copies.get(i) ?? file.subarray(m.off + i * PAGE_SIZE, m.off + (i + 1) * PAGE_SIZE);
      for (let step = 0; step < 300; step++) {
        const m = maps[rng.int(maps.length)];
        const op = rng.int(10);
        if (op < 6) {
          // A write inside one live page of a mapping.
          const i = rng.int(m.pages);
          if (!m.live[i]) continue;
          const at = rng.int(PAGE_SIZE - 16);
          const data = rng.fill(new Uint8Array(rng.range(1, 16)));
          expect(m.p.write(m.addr + i * PAGE_SIZE + at, data).errno).toBe(0);
          if (m.shared) file.set(data, m.off + i * PAGE_SIZE + at);
          else {
            const copy = m.copies.get(i) ?? refPage(m, i).slice();
            copy.set(data, at);
            m.copies.set(i, copy);
          }
        } else if (op < 8) {
          // write(2) of up to two pages at a random file offset.
          const len = rng.range(1, 2 * PAGE_SIZE);
          const at = rng.int(file.length - len);
          const data = rng.fill(new Uint8Array(len));
          // Stage the bytes in a's anonymous buffer page by page (it is one page long).
          let done = 0;
          while (done < len) {
            const n = Math.min(PAGE_SIZE, len - done);
            a.write(buf, data.subarray(done, done + n));
            expect(a.lseek(fd, at + done, 0).ret).toBe(at + done);
            expect(a.writeFd(fd, buf, n).ret).toBe(n);
            done += n;
          }
          file.set(data, at);
        } else if (op < 9) {
          // munmap one page (splits the VMA).
          const i = rng.int(m.pages);
          if (!m.live[i]) continue;
          expect(m.p.munmap(m.addr + i * PAGE_SIZE, PAGE_SIZE).errno).toBe(0);
          m.live[i] = false;
          m.copies.delete(i);
        } else {
          // mprotect one page read-only and back (split, then merge).
          const i = rng.int(m.pages);
          if (!m.live[i]) continue;
          expect(m.p.mprotect(m.addr + i * PAGE_SIZE, PAGE_SIZE, PROT_READ).errno).toBe(0);
          expect(m.p.mprotect(m.addr + i * PAGE_SIZE, PAGE_SIZE, RW).errno).toBe(0);
        }
        // Check every live page of every mapping.
        if (step % 10 === 0 || step === 299) {
          for (const x of maps) {
            for (let i = 0; i < x.pages; i++) {
              if (!x.live[i]) expect(x.p.read(x.addr + i * PAGE_SIZE, 1)).toBeNull();
              else expect(firstDifference(x.p.read(x.addr + i * PAGE_SIZE, PAGE_SIZE), refPage(x, i))).toBe(-1);
            }
          }
          expect(firstDifference(a.memfd(fd)!.readAt(0, file.length), file)).toBe(-1);
        }
      }
    });
  }
});
