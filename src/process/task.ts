/**
 * `current` as kernel objects see it: the user-memory access of file.ts plus what VFIO
 * needs from a task: its mm (locked_vm, pinning), capabilities, RLIMIT_MEMLOCK and its
 * file table (VFIO_GROUP_SET_CONTAINER passes a container fd).
 */
import type { FileOps, UserAccess } from "./file";
import type { MmStruct } from "./mm";

/** The calling task with everything kernel objects of this model may ask of it. */
export interface Task extends UserAccess {
  /** Process id (for messages). */
  readonly pid: number;
  /** The task's address space; null once the process has exited. */
  readonly mm: MmStruct | null;
  /** capable(cap) for the effective set. */
  capable(cap: number): boolean;
  /** rlimit(RLIMIT_MEMLOCK) in bytes (RLIM_INFINITY when unlimited). */
  rlimitMemlock(): bigint;
  /** The open file behind `fd`, or null (fdget). */
  fdget(fd: number): FileOps | null;
  /**
   * get_unused_fd_flags(): the fd number the next fd_install() will use, or -errno. With
   * fdInstall, how a kernel object hands the caller a new file (a migration data_fd).
   */
  getUnusedFd?(): number;
  /** fd_install(): `fd` (from getUnusedFd) now refers to `f`, taking a reference on it. */
  fdInstall?(fd: number, f: FileOps): void;
}

/** Whether a UserAccess is a full Task of this model (kernel objects need one). */
export function isTask(u: UserAccess): u is Task {
  return typeof (u as Partial<Task>).capable === "function" && "mm" in u && typeof (u as Partial<Task>).fdget === "function";
}
