/**
 * The contract between the simulated process and the kernel objects behind its file
 * descriptors (a VFIO container, /dev/iommu, a vhost-vdpa device, ...).
 *
 * Calls carry the calling task, so a file can copy from and to that task's user memory
 * with copy_from_user/copy_to_user semantics and charge its locked memory. Every
 * operation returns what the kernel's handler returns: a value >= 0, or -errno. They
 * never throw for bad input.
 */
import type { WasmCore } from "../wasm/core";

/** The calling process as kernel code sees it (`current`). */
export interface UserAccess {
  /**
   * copy_from_user: the `len` bytes at `addr`, or null when any of them cannot be read
   * by the process (unmapped, PROT_NONE): the caller then returns -EFAULT.
   */
  copyFromUser(addr: bigint, len: number): Uint8Array | null;
  /**
   * copy_from_user into `dst[0, len)` (no new array: ioctls copy a small struct per call);
   * false, `dst` unchanged, when any byte cannot be read. Optional: callers fall back to
   * copyFromUser.
   */
  copyFromUserInto?(addr: bigint, dst: Uint8Array, len: number): boolean;
  /**
   * copy_to_user: writes `data` at `addr` and returns how many bytes were NOT written
   * (0 on success). Like Linux, the bytes before the first unwritable one are written.
   */
  copyToUser(addr: bigint, data: Uint8Array): number;
  /**
   * fault_in_writeable() / pin_user_pages(FOLL_WRITE)'s fault-in: makes [addr, addr+len)
   * present and writable without changing its bytes; returns how many bytes could NOT be
   * (0 on success). Optional: without it, callers write the bytes they read back.
   */
  faultInWriteable?(addr: bigint, len: number): number;
}

/** The file operations a kernel object implements (struct file_operations, the parts modelled). */
export interface FileOps {
  /** unlocked_ioctl: `arg` is the raw argument (usually a user pointer). */
  ioctl?(task: UserAccess, cmd: number, arg: bigint): number;
  /** write(2): `count` bytes at user address `buf`; returns bytes consumed or -errno. */
  write?(task: UserAccess, buf: bigint, count: number): number;
  /** read(2): into user address `buf`; returns bytes produced or -errno. */
  read?(task: UserAccess, buf: bigint, count: number): number;
  /** The last close of the file. */
  release?(): void;
}

/** What a file mapping needs from the file behind it (a memfd today). */
export interface MappedFile extends FileOps {
  /** The Wasm core holding the pages; a process must use the same one to map them. */
  readonly core: WasmCore;
  /** i_size in bytes. */
  readonly size: number;
  /** Synthetic physical address of file offset 0 (pages are contiguous in file order). */
  readonly phys: number;
  /** Linear-memory address of the frame holding file offset `index * FRAME_SIZE` (memory.ts) (0: none / ENOMEM). */
  frame(index: number, allocate: boolean): number;
  /** The bytes at [off, off+len) (zeros where never written). */
  readAt(off: number, len: number): Uint8Array;
}
