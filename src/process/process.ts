/**
 * A simulated process: one mm, credentials (CAP_IPC_LOCK), RLIMIT_MEMLOCK and a file
 * table, with the syscall surface the VFIO model needs. Syscalls return what libc returns:
 * `{ ret, errno }` with ret -1 and a positive errno on failure, errno 0 on success.
 */
import { WasmCore, type CoreInput } from "../wasm/core";
import { Errno } from "../uapi/errno";
import type { FileOps } from "./file";
import type { GupBehaviour } from "./gup";
import { CAP_IPC_LOCK, CAP_SYS_RESOURCE, MmStruct, RLIM_INFINITY } from "./mm";
import type { Task } from "./task";
import type { Scheduler } from "./sched";
import { fget, fput } from "./fref";
import { MemfdFile } from "./shmem";
import { PAGE_SIZE, PROT_READ, PROT_WRITE, TASK_SIZE } from "./vma";
import { u64ToNumber } from "../util/u64";
import { argBool, argBytes, argInt, argString, argU64, argULong, argWhole } from "../util/args";

/** A syscall's result as user space sees it. */
export interface SyscallResult {
  /** The return value (-1 on failure). */
  ret: number;
  /** 0 on success, else the positive errno. */
  errno: number;
}

/** Opens a device node for a task: the file, or -errno. */
export type DeviceOpen = (task: Task) => FileOps | number;

/** Options for a new process. */
export interface ProcessOptions {
  /**
   * The Wasm core backing user memory (share it with kernel objects that pack into user
   * memory), or the compiled module to instantiate one from; default: a new core on the
   * default module.
   */
  core?: CoreInput;
  /** Initial RLIMIT_MEMLOCK in bytes (default RLIM_INFINITY). */
  rlimitMemlock?: bigint;
  /** Whether CAP_IPC_LOCK starts in the effective set (default true, like the oracle's root). */
  capIpcLock?: boolean;
  /** What pinning does on the modelled kernel (default Linux 6.1's, `GUP_LINUX_6_1`). */
  gup?: Readonly<GupBehaviour>;
  /**
   * The scheduler of simulated threads this process's mm joins (`Scheduler.attach`): its
   * threads can then contend for mmap_lock. Default: a private one, single-threaded.
   */
  sched?: Scheduler;
}

/** MAP_SHARED (mman.h): writes reach the file and every other mapping of it. */
export const MAP_SHARED = 0x01;
/** MAP_PRIVATE (mman.h): writes stay in this mapping (copy-on-write). */
export const MAP_PRIVATE = 0x02;
/** ESPIPE: lseek on a file without a position. */
const ESPIPE = 29;
/** ECONNREFUSED: the peer of the socket is gone. */
const ECONNREFUSED = 111;

let nextPid = 1000;

const ok = (ret = 0): SyscallResult => ({ ret, errno: 0 });
const fail = (negErrno: number): SyscallResult => ({ ret: -1, errno: -negErrno });
/** A syscall's SyscallResult from the kernel's return value (a negative errno on failure). */
export const toResult = (r: number): SyscallResult => (r < 0 ? fail(r) : ok(r));

/** Converts a user address/length given as bigint into a number, or -1 when out of range. */
function num(x: bigint | number): number {
  if (typeof x === "number") return Number.isSafeInteger(x) && x >= 0 ? x : -1;
  return x >= 0n && x <= MAX_SAFE ? u64ToNumber(x) : -1;
}

const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);

/** One simulated process. */
export class Process implements Task {
  readonly pid = nextPid++;
  readonly core: WasmCore;
  private mmRef: MmStruct | null;
  private rlimMemlockSoft: bigint;
  private rlimMemlockHard: bigint;
  private capIpcLockEffective: boolean;
  private capSysResourceEffective = true;
  private readonly files = new Map<number, FileOps>();
  private readonly devices = new Map<string, DeviceOpen>();

  constructor(opts: ProcessOptions = {}) {
    this.core = WasmCore.from(opts.core);
    this.mmRef = new MmStruct(this.core, opts.gup);
    if (opts.sched) opts.sched.attach(this.mmRef);
    this.rlimMemlockSoft = this.rlimMemlockHard = opts.rlimitMemlock ?? RLIM_INFINITY;
    this.capIpcLockEffective = opts.capIpcLock ?? true;
  }

  // ---- Task (what kernel objects see) ----

  /** The address space (null after exit). */
  get mm(): MmStruct | null {
    return this.mmRef;
  }

  capable(cap: number): boolean {
    if (cap === CAP_SYS_RESOURCE) return this.capSysResourceEffective;
    return cap === CAP_IPC_LOCK ? this.capIpcLockEffective : false;
  }

  rlimitMemlock(): bigint {
    return this.rlimMemlockSoft;
  }

  fdget(fd: number): FileOps | null {
    return this.files.get(fd) ?? null;
  }

  copyFromUser(addr: bigint, len: number): Uint8Array | null {
    return this.mmRef ? this.mmRef.memory.copyFromUser(addr, len) : null;
  }

  copyFromUserInto(addr: bigint, dst: Uint8Array, len: number): boolean {
    return this.mmRef ? this.mmRef.memory.copyFromUserInto(addr, dst, len) : false;
  }

  copyToUser(addr: bigint, data: Uint8Array): number {
    return this.mmRef ? this.mmRef.memory.copyToUser(addr, data) : data.length;
  }

  faultInWriteable(addr: bigint, len: number): number {
    return this.mmRef ? this.mmRef.memory.faultInWriteable(addr, len) : len;
  }

  // ---- credentials and limits ----

  /** setrlimit(RLIMIT_MEMLOCK, {soft, hard}) (the simulated process may raise the hard limit, like root). */
  setrlimitMemlock(soft: bigint, hard: bigint = soft): SyscallResult {
    soft = argU64("soft", soft);
    hard = argU64("hard", hard);
    if (soft > hard) return fail(-Errno.EINVAL);
    this.rlimMemlockSoft = soft;
    this.rlimMemlockHard = hard;
    return ok();
  }

  /** getrlimit(RLIMIT_MEMLOCK). */
  getrlimitMemlock(): { soft: bigint; hard: bigint } {
    return { soft: this.rlimMemlockSoft, hard: this.rlimMemlockHard };
  }

  /** capset() raising or dropping CAP_IPC_LOCK in the effective set (it stays permitted). */
  setCapIpcLock(on: boolean): SyscallResult {
    argBool("on", on);
    this.capIpcLockEffective = on;
    return ok();
  }

  /** capset() raising or dropping CAP_SYS_RESOURCE in the effective set (it stays permitted). */
  setCapSysResource(on: boolean): SyscallResult {
    this.capSysResourceEffective = on;
    return ok();
  }

  /** VmPin from /proc/self/status, in KiB. */
  vmPinKb(): number {
    return this.mmRef ? this.mmRef.vmPinKb : 0;
  }

  /** VmLck from /proc/self/status, in KiB. */
  vmLckKb(): number {
    return this.mmRef ? this.mmRef.vmLckKb : 0;
  }

  // ---- memory syscalls ----

  /** mmap(2) of anonymous private memory; `addr` means MAP_FIXED_NOREPLACE. Returns the address in `ret`. */
  mmap(addr: bigint | number | undefined, len: bigint | number, prot = PROT_READ | PROT_WRITE): SyscallResult {
    if (addr !== undefined) argWhole("addr", addr);
    argWhole("len", len);
    argInt("prot", prot);
    if (!this.mmRef) return fail(-Errno.ENOMEM);
    const a = addr === undefined ? undefined : num(addr);
    const l = num(len);
    if (a === -1 || l === -1) return fail(-Errno.EINVAL);
    return toResult(this.mmRef.memory.vmas.mmap(a, l, prot));
  }

  /** munmap(2). */
  munmap(addr: bigint | number, len: bigint | number): SyscallResult {
    argWhole("addr", addr);
    argWhole("len", len);
    if (!this.mmRef) return fail(-Errno.EINVAL);
    const a = num(addr);
    const l = num(len);
    if (a === -1 || l === -1) return fail(-Errno.EINVAL);
    const vmas = this.mmRef.memory.vmas;
    const r = vmas.checkMunmap(a, l);
    if (r < 0) return fail(r);
    const end = a + Math.ceil(l / PAGE_SIZE) * PAGE_SIZE;
    const removed = vmas.removeRange(a, end);
    this.mmRef.memory.discard(a, end);
    for (const v of removed) if (v.file !== undefined) fput(v.file);
    return ok();
  }

  /** mprotect(2) with PROT_NONE / PROT_READ / PROT_READ|PROT_WRITE. */
  mprotect(addr: bigint | number, len: bigint | number, prot: number): SyscallResult {
    argWhole("addr", addr);
    argWhole("len", len);
    argInt("prot", prot);
    if (!this.mmRef) return fail(-Errno.ENOMEM);
    const a = num(addr);
    const l = num(len);
    if (a === -1) return fail(-Errno.EINVAL);
    if (l === -1) return fail(-Errno.ENOMEM);
    return toResult(this.mmRef.memory.vmas.mprotect(a, l, prot));
  }

  /**
   * Writes `byte` over [addr, addr+len) as the process itself would (memset): returns
   * -1/EFAULT (a SIGSEGV in real life) when any byte is not writable, writing nothing.
   */
  fill(addr: bigint | number, len: bigint | number, byte: number): SyscallResult {
    argWhole("addr", addr);
    argWhole("len", len);
    argInt("byte", byte);
    const a = num(addr);
    const l = num(len);
    const mem = this.mmRef?.memory;
    if (!mem || a === -1 || l === -1 || a + l > TASK_SIZE) return fail(-Errno.EFAULT);
    if (mem.accessibleLength(a, l, true) < l) return fail(-Errno.EFAULT);
    return mem.fillRaw(a, l, byte & 0xff) ? ok() : fail(-Errno.ENOMEM);
  }

  /** Writes bytes as the process would (EFAULT, nothing written, if not all writable). */
  write(addr: bigint | number, data: Uint8Array): SyscallResult {
    argWhole("addr", addr);
    argBytes("data", data);
    const a = num(addr);
    const mem = this.mmRef?.memory;
    if (!mem || a === -1) return fail(-Errno.EFAULT);
    const r = mem.writeUser(a, data);
    return r === true ? ok() : fail(r === false ? -Errno.EFAULT : -Errno.ENOMEM);
  }

  /** Reads bytes as process_vm_readv would: null when any byte is not readable. */
  read(addr: bigint | number, len: number): Uint8Array | null {
    argWhole("addr", addr);
    argInt("len", len, 0);
    const a = num(addr);
    if (a === -1 || !this.mmRef) return null;
    return this.mmRef.memory.readUser(a, len);
  }

  // ---- files ----

  /** Makes `path` openable: open() calls `opener` with this task. */
  registerDevice(path: string, opener: DeviceOpen): void {
    this.devices.set(path, opener);
  }

  /** open(2) of a registered device node; the lowest free fd, from 3. */
  open(path: string): SyscallResult {
    argString("path", path);
    const opener = this.devices.get(path);
    if (!opener) return fail(-Errno.ENOENT);
    const f = opener(this);
    if (typeof f === "number") return fail(f);
    return ok(this.installFd(f));
  }

  /** fd_install at the lowest free fd from 3, taking a reference on the file. */
  private installFd(f: FileOps): number {
    const fd = this.getUnusedFd();
    this.fdInstall(fd, f);
    return fd;
  }

  /** get_unused_fd_flags(): the lowest free fd from 3 (nothing is reserved: one caller at a time). */
  getUnusedFd(): number {
    let fd = 3;
    while (this.files.has(fd)) fd++;
    return fd;
  }

  /** fd_install(): `fd` refers to `f` from now on; takes a reference on the file. */
  fdInstall(fd: number, f: FileOps): void {
    this.files.set(fd, f);
    fget(f);
  }

  /** close(2): the last close calls the file's release. */
  close(fd: number): SyscallResult {
    argInt("fd", fd);
    const f = this.files.get(fd);
    if (!f) return fail(-Errno.EBADF);
    this.files.delete(fd);
    // The file is released when its last reference goes, in whichever process that is.
    fput(f);
    return ok();
  }

  /** ioctl(2): dispatches to the file's ioctl; ENOTTY when it has none. */
  ioctl(fd: number, cmd: number, arg: bigint | number = 0n): SyscallResult {
    argInt("fd", fd);
    argInt("cmd", cmd, -(2 ** 31), 2 ** 32 - 1);
    const a = argULong("arg", arg);
    const f = this.files.get(fd);
    if (!f) return fail(-Errno.EBADF);
    if (!f.ioctl) return fail(-Errno.ENOTTY);
    const r = f.ioctl(this, cmd >>> 0, a);
    return toResult(r);
  }

  /**
   * ioctl(2) for the library's typed handles (`Type1Handle`), which pass their own
   * fd, a known command and their scratch address: the file's return value (a negative errno
   * on failure), without ioctl()'s argument checks and result object, which a VMM's
   * thousands of MAP_DMA calls would pay on top of the kernel's work. Not part of the
   * published API (left out of the type declarations): call `ioctl()`.
   * @internal
   */
  ioctlRet(fd: number, cmd: number, arg: bigint): number {
    const f = this.files.get(fd);
    if (!f) return -Errno.EBADF;
    if (!f.ioctl) return -Errno.ENOTTY;
    return f.ioctl(this, cmd >>> 0, arg);
  }

  /**
   * write() of the typed handles' argument structs into their scratch page (an
   * address already a Number): 0, -EFAULT or -ENOMEM, as write() reports them. Not part
   * of the published API: call `write()`.
   * @internal
   */
  writeRet(addr: number, data: Uint8Array): number {
    const mem = this.mmRef?.memory;
    if (!mem) return -Errno.EFAULT;
    const r = mem.writeUser(addr, data);
    return r === true ? 0 : r === false ? -Errno.EFAULT : -Errno.ENOMEM;
  }

  // ---- files and shared memory (memfd, file mappings, read/write, fd passing) ----

  /** memfd_create(2): a new empty memfd (flags are not modelled); returns its fd. */
  memfdCreate(name: string): SyscallResult {
    // memfd_create: the name is at most 249 bytes (NAME_MAX minus "memfd:").
    if (new TextEncoder().encode(name).length > 249) return fail(-Errno.EINVAL);
    const f = new MemfdFile(this.core, name);
    return ok(this.installFd(f));
  }

  /** ftruncate(2) of a memfd: EBADF for no fd, EINVAL for a file that cannot be truncated. */
  ftruncate(fd: number, length: bigint | number): SyscallResult {
    const f = this.files.get(fd);
    if (!f) return fail(-Errno.EBADF);
    if (!(f instanceof MemfdFile)) return fail(-Errno.EINVAL);
    const l = num(length);
    if (l === -1) return fail(-Errno.EINVAL);
    return toResult(f.truncate(l));
  }

  /**
   * mmap(2) of a file: `flags` MAP_SHARED (1) or MAP_PRIVATE (2); `addr` means
   * MAP_FIXED_NOREPLACE as in `mmap`. EBADF for no fd, ENODEV for a file that cannot be
   * mapped, EACCES for MAP_SHARED|PROT_WRITE of a file opened read-only (never here),
   * EINVAL for other flags or an unaligned offset. Mapping past EOF is allowed; touching
   * those pages faults.
   */
  mmapFd(addr: bigint | number | undefined, len: bigint | number, prot: number, flags: number, fd: number, offset: bigint | number = 0): SyscallResult {
    if (!this.mmRef) return fail(-Errno.ENOMEM);
    if (flags !== MAP_SHARED && flags !== MAP_PRIVATE) return fail(-Errno.EINVAL);
    const f = this.files.get(fd);
    if (!f) return fail(-Errno.EBADF);
    if (!(f instanceof MemfdFile)) return fail(-Errno.ENODEV);
    const a = addr === undefined ? undefined : num(addr);
    const l = num(len);
    const o = num(offset);
    if (a === -1 || l === -1 || o === -1) return fail(-Errno.EINVAL);
    return toResult(this.mmRef.memory.mmapFile(a, l, prot, f, o, flags === MAP_SHARED));
  }

  /** write(2): `count` bytes of this process's memory at `buf` to the file behind `fd`. */
  writeFd(fd: number, buf: bigint | number, count: number): SyscallResult {
    const f = this.files.get(fd);
    if (!f) return fail(-Errno.EBADF);
    if (!f.write) return fail(-Errno.EINVAL);
    return toResult(f.write(this, BigInt(buf), count));
  }

  /** read(2): up to `count` bytes from the file behind `fd` into this process's memory at `buf`. */
  readFd(fd: number, buf: bigint | number, count: number): SyscallResult {
    const f = this.files.get(fd);
    if (!f) return fail(-Errno.EBADF);
    if (!f.read) return fail(-Errno.EINVAL);
    return toResult(f.read(this, BigInt(buf), count));
  }

  /** lseek(2) on a memfd (SEEK_SET 0, SEEK_CUR 1, SEEK_END 2); ESPIPE for other files. */
  lseek(fd: number, offset: number, whence: number): SyscallResult {
    const f = this.files.get(fd);
    if (!f) return fail(-Errno.EBADF);
    if (!(f instanceof MemfdFile)) return fail(-ESPIPE);
    return toResult(f.llseek(offset, whence));
  }

  /**
   * Hands the open file behind `fd` to `to`, as sendmsg(SCM_RIGHTS) on one end of a socket
   * pair and recvmsg on the other do: the receiver gets a new fd (its lowest free one) for
   * the same open file (same file position, same device state), which stays open until
   * both have closed it. Returns the receiver's fd.
   */
  sendFd(fd: number, to: Process): SyscallResult {
    const f = this.files.get(fd);
    if (!f) return fail(-Errno.EBADF);
    if (to.mmRef === null) return fail(-ECONNREFUSED);
    return ok(to.installFd(f));
  }

  /** The open file behind `fd` when it is a memfd (model introspection), else null. */
  memfd(fd: number): MemfdFile | null {
    const f = this.files.get(fd);
    return f instanceof MemfdFile ? f : null;
  }

  /** exit: closes every file (releasing containers) and drops the mm. */
  exit(): void {
    for (const fd of [...this.files.keys()]) this.close(fd);
    if (this.mmRef) {
      // exit_mmap: every file mapping drops its reference.
      for (const v of this.mmRef.memory.vmas.list()) if (v.file !== undefined) fput(v.file);
      this.mmRef.alive = false;
      this.mmRef.memory.dispose();
      this.mmRef = null;
    }
  }
}
