/**
 * Linux's generic errno values (include/uapi/asm-generic/errno-base.h, errno.h) and their
 * names. Kernel-side functions in this model return `-errno` like the kernel does;
 * syscalls surface `{ ret: -1, errno }` like libc.
 */
export const Errno = {
  EPERM: 1,
  ENOENT: 2,
  ESRCH: 3,
  EINTR: 4,
  EIO: 5,
  ENXIO: 6,
  E2BIG: 7,
  EXDEV: 18,
  EBADF: 9,
  EAGAIN: 11,
  ENOMEM: 12,
  EACCES: 13,
  EFAULT: 14,
  EBUSY: 16,
  EEXIST: 17,
  ENODEV: 19,
  EINVAL: 22,
  EMFILE: 24,
  ENOTTY: 25,
  ENOSPC: 28,
  EDOM: 33,
  ERANGE: 34,
  EOVERFLOW: 75,
  EMSGSIZE: 90,
  EOPNOTSUPP: 95,
  EADDRINUSE: 98,
  ESPIPE: 29,
  ENOMSG: 42,
} as const;

/** One of the errno names above. */
export type ErrnoName = keyof typeof Errno;

const NAMES = new Map<number, ErrnoName>(Object.entries(Errno).map(([k, v]) => [v, k as ErrnoName]));

/** The name of a positive errno value ("EINVAL"), or "E<n>" for one this table lacks. */
export function errnoName(errno: number): string {
  return NAMES.get(Math.abs(errno)) ?? `E${Math.abs(errno)}`;
}

/**
 * The outcome of a kernel call as every typed API returns it: `ok` with a value, or the
 * errno Linux returned and its name. Errors are values, never exceptions.
 */
export type KernelResult<T = void> = { ok: true; value: T } | { ok: false; errno: number; errnoName: string };

/** A failed {@link KernelResult} for a positive errno. */
export function kernelFailure<T = never>(errno: number): KernelResult<T> {
  return { ok: false, errno, errnoName: errnoName(errno) };
}
