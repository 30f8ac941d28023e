/**
 * struct file reference counting (fget/fput) across every simulated process: an open file
 * is released when the last reference goes, whether that was an fd in any process's table
 * (SCM_RIGHTS hands the same file to another process) or a VMA mapping it.
 */
import type { FileOps } from "./file";

const refs = new WeakMap<FileOps, number>();

/** get_file(): one more reference. */
export function fget(f: FileOps): void {
  refs.set(f, (refs.get(f) ?? 0) + 1);
}

/** fput(): one reference less; the last one calls the file's release. */
export function fput(f: FileOps): void {
  const n = (refs.get(f) ?? 1) - 1;
  if (n > 0) {
    refs.set(f, n);
    return;
  }
  refs.delete(f);
  f.release?.();
}

/** file_count(): references held (0 for a file no process holds). */
export function fileCount(f: FileOps): number {
  return refs.get(f) ?? 0;
}
