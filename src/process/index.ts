/**
 * process: the simulated user process: address space (VMAs with mmap/munmap/mprotect),
 * sparse user memory in Wasm frames with copy_from_user/copy_to_user semantics,
 * RLIMIT_MEMLOCK, CAP_IPC_LOCK, locked_vm, and a file table whose ioctls reach kernel
 * objects through `FileOps`; memfds mapped MAP_SHARED (the same pages in every process)
 * or MAP_PRIVATE (COW), read/write on files, and fds handed to another process; mmap_lock
 * as a reader-writer semaphore, and a deterministic scheduler of simulated threads
 * (generators) with a workqueue, to enumerate the interleavings of kernel races.
 */
export type { FileOps, UserAccess } from "./file";
export type { Task } from "./task";
export { isTask } from "./task";
export { MmStruct, RLIM_INFINITY, CAP_IPC_LOCK } from "./mm";
export { UserMemory, FRAME_SIZE } from "./memory";
export type { UserSpan, PinnedRun } from "./memory";
export { VmaList, PAGE_SIZE, PAGE_SHIFT, PROT_NONE, PROT_READ, PROT_WRITE, PROT_EXEC, TASK_SIZE, protReadable, protWritable } from "./vma";
export type { Vma } from "./vma";
export { Process } from "./process";
export { GUP_LINUX_6_1, GUP_LINUX_6_2 } from "./gup";
export type { GupBehaviour } from "./gup";
export type { SyscallResult, DeviceOpen, ProcessOptions } from "./process";
export { MAP_SHARED, MAP_PRIVATE } from "./process";
export { MemfdFile } from "./shmem";
export type { MappedFile } from "./shmem";
export { fileCount } from "./fref";
export { RwSemaphore, RwsemError } from "./rwsem";
export { Scheduler, SimThread, SchedulerError, SeededChooser, ReplayChooser, FIRST_CHOOSER, exploreSchedules } from "./sched";
export type { Blocked, ThreadStep, ThreadBody, Chooser, WorkItem, RunResult, SchedulerOptions, ExploreReport } from "./sched";
export { pageFault, mmapLocked, munmapLocked } from "./threads";
