/**
 * What vhost-vdpa asks of the owner's address space: `current->mm` identity and
 * `find_vma`, over the kinds of tasks the model has (a simulated Process, a task that
 * describes its own VMAs, or a bare UserAccess).
 */
import type { UserAccess } from "../process/file";
import { isTask } from "../process/task";

/**
 * A VMA as vhost-vdpa's use_va UPDATE path sees it (`find_vma` on the owner's mm). Tasks
 * that can describe their address space implement {@link VmaSource}.
 */
export interface VhostVma {
  /** vm_start. */
  readonly start: bigint;
  /** vm_end (exclusive). */
  readonly end: bigint;
  /** vm_file && VM_SHARED && !(VM_IO | VM_PFNMAP): only such VMAs are mapped; others are skipped. */
  readonly sharedFile: boolean;
  /** The backing file object (kept in the entry's opaque, like vdpa_map_file.file). */
  readonly file?: unknown;
  /** vm_pgoff << PAGE_SHIFT: file offset of vm_start. */
  readonly fileOffset?: bigint;
}

/** A task that can answer `find_vma(mm, addr)`: the first VMA with end > addr, or null. */
export interface VmaSource {
  findVma(addr: bigint): VhostVma | null;
}

/** What the use_va path stores in an entry's opaque (`struct vdpa_map_file`). */
export interface VdpaMapFile {
  readonly file: unknown;
  readonly offset: bigint;
}

/** The mm a task stands for (`current->mm`): a Task's mm, else the task object itself. */
export function mmOf(task: UserAccess): unknown {
  if (isTask(task) && task.mm !== null) return task.mm;
  return task;
}

/**
 * find_vma on `task`'s mm. A task may describe its VMAs itself (VmaSource); a simulated
 * Process's VMAs are what it mapped (anonymous, or a memfd MAP_SHARED/MAP_PRIVATE); a bare
 * UserAccess is treated as one shared file mapping covering everything.
 */
export function findVma(task: UserAccess, addr: bigint): VhostVma | null {
  if (typeof (task as Partial<VmaSource>).findVma === "function") return (task as UserAccess & VmaSource).findVma(addr);
  if (isTask(task)) {
    const vmas = task.mm?.memory.vmas;
    if (vmas === undefined || addr > BigInt(Number.MAX_SAFE_INTEGER)) return null;
    const v = vmas.at(vmas.findIndex(Number(addr)));
    if (v === undefined) return null;
    // Only MAP_SHARED file mappings are mapped; anonymous and MAP_PRIVATE ones are skipped.
    const sharedFile = v.file !== undefined && v.shared === true;
    return sharedFile
      ? { start: BigInt(v.start), end: BigInt(v.end), sharedFile, file: v.file, fileOffset: BigInt(v.offset ?? 0) }
      : { start: BigInt(v.start), end: BigInt(v.end), sharedFile };
  }
  return { start: 0n, end: 1n << 64n, sharedFile: true, file: task, fileOffset: 0n };
}
