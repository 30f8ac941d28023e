/**
 * struct vfio_dma and struct vfio_pfn: one user mapping of a type1 container and the pages
 * emulated devices pinned inside it. State is per mapping and per pinned run, never per page
 * (except vfio_pfn entries, which exist only for pages an emulated device pinned).
 */
import type { Bitmap } from "../bitmap";
import type { MmStruct } from "../process/mm";
import type { Task } from "../process/task";

/** A physically contiguous run pinned by vfio_pin_pages_remote() and mapped into every domain. */
export interface PinnedRun {
  /** Byte offset of the run from dma.iova. */
  offset: bigint;
  /** Synthetic physical address of its first page. */
  phys: bigint;
  /** Pages in the run. */
  npages: number;
  /** A reserved pfn run (the zero page): not charged, not uncharged. */
  reserved: boolean;
}

/** struct vfio_pfn: a page pinned through vfio_pin_pages(). */
export interface VfioPfn {
  iova: bigint;
  phys: bigint;
  refCount: number;
  /** The pfn is reserved (the zero page): put_pfn() unpins nothing and uncharges nothing. */
  reserved: boolean;
}

/** struct vfio_dma. */
export class VfioDma {
  /** Bytes mapped so far (grows while pinning, like the kernel's zero-sized insert). */
  size = 0n;
  iommuMapped = false;
  vaddrInvalid = false;
  /** Pages this dma has charged to its mm (6.3+'s dma->locked_vm; kept in every profile). */
  lockedVm = 0;
  /** Dirty bitmap while tracking (1 bit per smallest IOMMU page, plus a spare u64). */
  bitmap: Bitmap | null = null;
  /** Whether bits [0, npages) of `bitmap` are known to be zero (lets GET_BITMAP skip a clear pass). */
  bitmapLowClean = false;
  /** Runs pinned and mapped for this dma, ascending. */
  runs: PinnedRun[] = [];
  /** Pages pinned by emulated devices, by iova. */
  readonly pfnList = new Map<bigint, VfioPfn>();
  /** Set for a 2016-RFC MSI window (no memory behind it). */
  msiReserved = false;

  constructor(
    readonly iova: bigint,
    public vaddr: bigint,
    readonly prot: number,
    public task: Task,
    public mm: MmStruct,
    public lockCap: boolean,
  ) {}

  /** Inclusive last iova (valid when size > 0). */
  get last(): bigint {
    return this.iova + this.size - 1n;
  }
}
