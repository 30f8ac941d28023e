/**
 * A simulated process: one mm, credentials (CAP_IPC_LOCK), RLIMIT_MEMLOCK and a file
 * table, with the syscall surface the VFIO model needs. Syscalls return what libc returns:
 * `{ ret, errno }` with ret -1 and a positive errno on failure, errno 0 on success.
 */
import { WasmCore } from "../wasm/core";
import { Errno } from "../uapi/errno";
import type { FileOps } from "./file";
import { CAP_IPC_LOCK, CAP_SYS_RESOURCE, MmStruct, RLIM_INFINITY } from "./mm";
import type { Task } from "./task";
import { PAGE_SIZE, PROT_READ, PROT_WRITE, TASK_SIZE } from "./vma";

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
  /** The Wasm core backing user memory (share it with kernel objects that pack into user memory). */
  core?: WasmCore;
  /** Initial RLIMIT_MEMLOCK in bytes (default RLIM_INFINITY). */
  rlimitMemlock?: bigint;
  /** Whether CAP_IPC_LOCK starts in the effective set (default true, like the oracle's root). */
  capIpcLock?: boolean;
}

let nextPid = 1000;

const ok = (ret = 0): SyscallResult => ({ ret, errno: 0 });
const fail = (negErrno: number): SyscallResult => ({ ret: -1, errno: -negErrno });
const toResult = (r: number): SyscallResult => (r < 0 ? fail(r) : ok(r));

/** Converts a user address/length given as bigint into a number, or -1 when out of range. */
function num(x: bigint | number): number {
  if (typeof x === "number") return Number.isSafeInteger(x) && x >= 0 ? x : -1;
  return x >= 0n && x <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(x) : -1;
}

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
    this.core = opts.core ?? new WasmCore();
    this.mmRef = new MmStruct(this.core);
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

  copyToUser(addr: bigint, data: Uint8Array): number {
    return this.mmRef ? this.mmRef.memory.copyToUser(addr, data) : data.length;
  }

  // ---- credentials and limits ----

  /** setrlimit(RLIMIT_MEMLOCK, {soft, hard}) (the simulated process may raise the hard limit, like root). */
  setrlimitMemlock(soft: bigint, hard: bigint = soft): SyscallResult {
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
    if (!this.mmRef) return fail(-Errno.ENOMEM);
    const a = addr === undefined ? undefined : num(addr);
    const l = num(len);
    if (a === -1 || l === -1) return fail(-Errno.EINVAL);
    return toResult(this.mmRef.memory.vmas.mmap(a, l, prot));
  }

  /** munmap(2). */
  munmap(addr: bigint | number, len: bigint | number): SyscallResult {
    if (!this.mmRef) return fail(-Errno.EINVAL);
    const a = num(addr);
    const l = num(len);
    if (a === -1 || l === -1) return fail(-Errno.EINVAL);
    const vmas = this.mmRef.memory.vmas;
    const r = vmas.checkMunmap(a, l);
    if (r < 0) return fail(r);
    const end = a + Math.ceil(l / PAGE_SIZE) * PAGE_SIZE;
    vmas.removeRange(a, end);
    this.mmRef.memory.discard(a, end);
    return ok();
  }

  /** mprotect(2) with PROT_NONE / PROT_READ / PROT_READ|PROT_WRITE. */
  mprotect(addr: bigint | number, len: bigint | number, prot: number): SyscallResult {
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
    const a = num(addr);
    const l = num(len);
    const mem = this.mmRef?.memory;
    if (!mem || a === -1 || l === -1 || a + l > TASK_SIZE) return fail(-Errno.EFAULT);
    if (mem.accessibleLength(a, l, true) < l) return fail(-Errno.EFAULT);
    return mem.fillRaw(a, l, byte & 0xff) ? ok() : fail(-Errno.ENOMEM);
  }

  /** Writes bytes as the process would (EFAULT, nothing written, if not all writable). */
  write(addr: bigint | number, data: Uint8Array): SyscallResult {
    const a = num(addr);
    const mem = this.mmRef?.memory;
    if (!mem || a === -1) return fail(-Errno.EFAULT);
    if (mem.accessibleLength(a, data.length, true) < data.length) return fail(-Errno.EFAULT);
    return mem.writeRaw(a, data) ? ok() : fail(-Errno.ENOMEM);
  }

  /** Reads bytes as process_vm_readv would: null when any byte is not readable. */
  read(addr: bigint | number, len: number): Uint8Array | null {
    const a = num(addr);
    if (a === -1 || !this.mmRef) return null;
    return this.mmRef.memory.copyFromUser(BigInt(a), len);
  }

  // ---- files ----

  /** Makes `path` openable: open() calls `opener` with this task. */
  registerDevice(path: string, opener: DeviceOpen): void {
    this.devices.set(path, opener);
  }

  /** open(2) of a registered device node; the lowest free fd, from 3. */
  open(path: string): SyscallResult {
    const opener = this.devices.get(path);
    if (!opener) return fail(-Errno.ENOENT);
    const f = opener(this);
    if (typeof f === "number") return fail(f);
    let fd = 3;
    while (this.files.has(fd)) fd++;
    this.files.set(fd, f);
    return ok(fd);
  }

  /** close(2): the last close calls the file's release. */
  close(fd: number): SyscallResult {
    const f = this.files.get(fd);
    if (!f) return fail(-Errno.EBADF);
    this.files.delete(fd);
    if (![...this.files.values()].includes(f)) f.release?.();
    return ok();
  }

  /** ioctl(2): dispatches to the file's ioctl; ENOTTY when it has none. */
  ioctl(fd: number, cmd: number, arg: bigint | number = 0n): SyscallResult {
    const f = this.files.get(fd);
    if (!f) return fail(-Errno.EBADF);
    if (!f.ioctl) return fail(-Errno.ENOTTY);
    const r = f.ioctl(this, cmd >>> 0, typeof arg === "bigint" ? arg : BigInt(arg));
    return toResult(r);
  }

  /** exit: closes every file (releasing containers) and drops the mm. */
  exit(): void {
    for (const fd of [...this.files.keys()]) this.close(fd);
    if (this.mmRef) {
      this.mmRef.alive = false;
      this.mmRef.memory.dispose();
      this.mmRef = null;
    }
  }
}
