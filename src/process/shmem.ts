/**
 * A memfd (mm/memfd.c over mm/shmem.c): an anonymous tmpfs file whose pages live in the
 * Wasm core's linear memory as 64 KiB frames keyed by file offset, allocated on the first
 * write. Every MAP_SHARED mapping of it, in any process, reads and writes these same
 * frames; write(2)/read(2) on its fd move bytes between them and the caller's memory.
 *
 * One object stands for both the open file description (`struct file`: the file position,
 * shared by every fd that refers to it, also across SCM_RIGHTS) and the inode (`i_size`,
 * the pages): memfd_create makes exactly one of each, and the model has no way to reopen.
 */
import { WasmCore } from "../wasm/core";
import { Errno } from "../uapi/errno";
import type { FileOps, MappedFile, UserAccess } from "./file";
export type { MappedFile } from "./file";
import { FRAME_SIZE } from "./memory";
import { PAGE_SIZE } from "./vma";

/** EFBIG (include/uapi/asm-generic/errno-base.h): past the largest file size. */
const EFBIG = 27;

/** MAX_LFS_FILESIZE on 64-bit, capped to what a JS number indexes exactly. */
const MAX_FILE_SIZE = Number.MAX_SAFE_INTEGER - FRAME_SIZE;
/** Each memfd's synthetic physical range starts this far apart (1 TiB), above anonymous memory's. */
const SHMEM_PHYS_STRIDE = 2 ** 40;
let nextShmemPhys = 2 ** 47;

/** A memfd: a FileOps with read/write/llseek at a shared file position, and mappable pages. */
export class MemfdFile implements FileOps, MappedFile {
  /** i_size. */
  size = 0;
  /** f_pos. */
  pos = 0;
  readonly phys: number;
  private readonly frames = new Map<number, number>();
  /** Whether the last reference is gone (the pages were freed). */
  private released = false;

  constructor(
    readonly core: WasmCore,
    /** The name given to memfd_create (shown as "memfd:NAME" in /proc/PID/maps). */
    readonly name: string,
  ) {
    this.phys = nextShmemPhys;
    nextShmemPhys += SHMEM_PHYS_STRIDE;
  }

  /** Number of frames allocated (memory-bound tests). */
  get frameCount(): number {
    return this.frames.size;
  }

  frame(index: number, allocate: boolean): number {
    let p = this.frames.get(index);
    if (p === undefined) {
      if (!allocate || this.released) return 0;
      p = this.core.alloc(FRAME_SIZE, true);
      if (p === 0) return 0;
      this.frames.set(index, p);
    }
    return p;
  }

  /** Reads [off, off+len) of the file's pages (zeros where never written; no EOF check). */
  readAt(off: number, len: number): Uint8Array {
    const out = new Uint8Array(len);
    for (let done = 0; done < len; ) {
      const index = Math.floor((off + done) / FRAME_SIZE);
      const inFrame = off + done - index * FRAME_SIZE;
      const n = Math.min(FRAME_SIZE - inFrame, len - done);
      const f = this.frame(index, false);
      if (f !== 0) out.set(this.core.u8.subarray(f + inFrame, f + inFrame + n), done);
      done += n;
    }
    return out;
  }

  /** Writes `data` at `off` into the file's pages (no size change); false when linear memory ran out. */
  writeAt(off: number, data: Uint8Array): boolean {
    for (let done = 0; done < data.length; ) {
      const index = Math.floor((off + done) / FRAME_SIZE);
      const inFrame = off + done - index * FRAME_SIZE;
      const n = Math.min(FRAME_SIZE - inFrame, data.length - done);
      const f = this.frame(index, true);
      if (f === 0) return false;
      this.core.u8.set(data.subarray(done, done + n), f + inFrame);
      done += n;
    }
    return true;
  }

  /**
   * ftruncate(2): sets i_size. Shrinking drops the pages past the new size and zeroes the
   * tail of the last one (shmem_setattr → truncate_setsize), so growing again reads zeros.
   */
  truncate(length: number): number {
    if (!Number.isSafeInteger(length) || length < 0) return -Errno.EINVAL;
    if (length > MAX_FILE_SIZE) return -EFBIG;
    if (length < this.size) {
      for (const [index, p] of [...this.frames]) {
        const fStart = index * FRAME_SIZE;
        if (fStart >= length) {
          this.core.free(p);
          this.frames.delete(index);
        } else if (fStart + FRAME_SIZE > length) {
          this.core.x.fillBytes(p + (length - fStart), 0, fStart + FRAME_SIZE - length);
        }
      }
    }
    this.size = length;
    return 0;
  }

  /** write(2) at f_pos: copies from the caller, extends i_size, advances f_pos. */
  write(task: UserAccess, buf: bigint, count: number): number {
    if (!Number.isSafeInteger(count) || count < 0) return -Errno.EINVAL;
    if (count === 0) return 0;
    if (this.pos + count > MAX_FILE_SIZE) return -EFBIG;
    // generic_perform_write copies page by page and stops at the first fault: a partial write
    // returns what was copied, a fault on the first byte is EFAULT.
    let done = 0;
    while (done < count) {
      const n = Math.min(PAGE_SIZE - ((this.pos + done) % PAGE_SIZE), count - done);
      const bytes = task.copyFromUser(BigInt.asUintN(64, buf + BigInt(done)), n);
      if (bytes === null) break;
      if (!this.writeAt(this.pos + done, bytes)) return done > 0 ? this.advance(done) : -Errno.ENOMEM;
      done += n;
    }
    if (done === 0) return -Errno.EFAULT;
    return this.advance(done);
  }

  private advance(done: number): number {
    this.pos += done;
    if (this.pos > this.size) this.size = this.pos;
    return done;
  }

  /** read(2) at f_pos: up to i_size; 0 at EOF; EFAULT when nothing could be copied out. */
  read(task: UserAccess, buf: bigint, count: number): number {
    if (!Number.isSafeInteger(count) || count < 0) return -Errno.EINVAL;
    const n = Math.max(0, Math.min(count, this.size - this.pos));
    if (n === 0) return 0;
    const left = task.copyToUser(buf, this.readAt(this.pos, n));
    const copied = n - left;
    if (copied === 0) return -Errno.EFAULT;
    this.pos += copied;
    return copied;
  }

  /** lseek(2) with SEEK_SET (0), SEEK_CUR (1) or SEEK_END (2). */
  llseek(offset: number, whence: number): number {
    const base = whence === 0 ? 0 : whence === 1 ? this.pos : whence === 2 ? this.size : -1;
    if (base < 0 || !Number.isSafeInteger(offset)) return -Errno.EINVAL;
    const to = base + offset;
    if (to < 0 || to > MAX_FILE_SIZE) return -Errno.EINVAL;
    this.pos = to;
    return to;
  }

  /** The last reference (fd or mapping) is gone: free the pages. */
  release(): void {
    this.released = true;
    for (const p of this.frames.values()) this.core.free(p);
    this.frames.clear();
  }
}

export { SHMEM_PHYS_STRIDE };
