/**
 * The vhost IOTLB map object (include/linux/vhost_iotlb.h, drivers/vhost/iotlb.c): an
 * interval tree of [start, last] (inclusive) → addr/perm entries plus a FIFO list in
 * insertion order, with the optional entry limit and VHOST_IOTLB_FLAG_RETIRE.
 *
 * The kernel's tree is an augmented rbtree from INTERVAL_TREE_DEFINE keyed on `start`,
 * where an equal `start` goes right: in-order is (start, insertion order). This model is
 * an AVL tree keyed on (start, seq) with seq a per-tree insertion counter, which gives the
 * same in-order sequence, augmented with the subtree's largest `last` so overlap queries
 * visit O(log n + k) nodes. Like the kernel, the tree itself never checks for overlaps:
 * callers (vhost-vdpa's UPDATE) do.
 */
import { Errno } from "../uapi/errno";

/** 2^64 - 1 (ULONG_MAX / U64_MAX on LP64). */
export const U64_MAX = (1n << 64n) - 1n;

/** `VHOST_IOTLB_FLAG_RETIRE`: when the limit is reached, evict the oldest entry instead of growing. */
export const VHOST_IOTLB_FLAG_RETIRE = 0x1;

/** One IOTLB entry (`struct vhost_iotlb_map`), read-only to users of the tree. */
export interface VhostIotlbMap {
  /** First IOVA covered. */
  readonly start: bigint;
  /** Last IOVA covered (inclusive). */
  readonly last: bigint;
  /** last - start + 1; never 2^64 because [0, U64_MAX] is stored as two entries. */
  readonly size: bigint;
  /** What `start` translates to (a user VA for use_va parents, a PA otherwise). */
  readonly addr: bigint;
  /** VHOST_MAP_RO/WO/RW (1/2/3); not validated, like the kernel. */
  readonly perm: number;
  /** The caller's context pointer (`opaque`; vhost-vdpa's use_va path stores file+offset). */
  readonly opaque: unknown;
}

class MapNode implements VhostIotlbMap {
  left: MapNode | null = null;
  right: MapNode | null = null;
  height = 1;
  subtreeLast: bigint;
  prev: MapNode | null = null;
  next: MapNode | null = null;
  size: bigint;

  constructor(
    readonly start: bigint,
    readonly last: bigint,
    public addr: bigint,
    readonly perm: number,
    readonly opaque: unknown,
    readonly seq: number,
    readonly owner: VhostIotlb,
  ) {
    this.size = last - start + 1n;
    this.subtreeLast = last;
  }
}

function before(a: MapNode, b: MapNode): boolean {
  return a.start < b.start || (a.start === b.start && a.seq < b.seq);
}

function height(n: MapNode | null): number {
  return n === null ? 0 : n.height;
}

function update(n: MapNode): void {
  const l = n.left;
  const r = n.right;
  n.height = 1 + Math.max(height(l), height(r));
  let m = n.last;
  if (l !== null && l.subtreeLast > m) m = l.subtreeLast;
  if (r !== null && r.subtreeLast > m) m = r.subtreeLast;
  n.subtreeLast = m;
}

function rotateRight(n: MapNode): MapNode {
  const l = n.left!;
  n.left = l.right;
  l.right = n;
  update(n);
  update(l);
  return l;
}

function rotateLeft(n: MapNode): MapNode {
  const r = n.right!;
  n.right = r.left;
  r.left = n;
  update(n);
  update(r);
  return r;
}

function rebalance(n: MapNode): MapNode {
  update(n);
  const bf = height(n.left) - height(n.right);
  if (bf > 1) {
    if (height(n.left!.left) < height(n.left!.right)) n.left = rotateLeft(n.left!);
    return rotateRight(n);
  }
  if (bf < -1) {
    if (height(n.right!.right) < height(n.right!.left)) n.right = rotateRight(n.right!);
    return rotateLeft(n);
  }
  return n;
}

function insertNode(root: MapNode | null, x: MapNode): MapNode {
  if (root === null) return x;
  if (before(x, root)) root.left = insertNode(root.left, x);
  else root.right = insertNode(root.right, x);
  return rebalance(root);
}

let detachedMin: MapNode | null = null;

/** Removes the leftmost node of `n`'s subtree; the node is left in `detachedMin`. */
function removeMin(n: MapNode): MapNode | null {
  if (n.left === null) {
    detachedMin = n;
    return n.right;
  }
  n.left = removeMin(n.left);
  return rebalance(n);
}

function removeNode(root: MapNode | null, x: MapNode): MapNode | null {
  if (root === null) return null;
  if (root === x) {
    if (root.left === null) return root.right;
    if (root.right === null) return root.left;
    const right = removeMin(root.right);
    const m = detachedMin!;
    detachedMin = null;
    m.left = root.left;
    m.right = right;
    return rebalance(m);
  }
  if (before(x, root)) root.left = removeNode(root.left, x);
  else root.right = removeNode(root.right, x);
  return rebalance(root);
}

/**
 * The kernel's `interval_tree_subtree_search`: the leftmost node whose `last >= start`,
 * returned only if its `start <= last`. Equal to "the first entry in (start, insertion)
 * order with map.start <= last && map.last >= start", including for start > last.
 */
function subtreeSearch(node: MapNode, start: bigint, last: bigint): MapNode | null {
  for (;;) {
    const l = node.left;
    if (l !== null && start <= l.subtreeLast) {
      node = l;
      continue;
    }
    if (node.start <= last) {
      if (start <= node.last) return node;
      const r = node.right;
      if (r !== null && start <= r.subtreeLast) {
        node = r;
        continue;
      }
    }
    return null;
  }
}

function collect(n: MapNode | null, start: bigint, last: bigint, out: MapNode[]): void {
  if (n === null || n.subtreeLast < start) return;
  collect(n.left, start, last, out);
  if (n.start > last) return;
  if (n.last >= start) out.push(n);
  collect(n.right, start, last, out);
}

function inorder(n: MapNode | null, out: MapNode[]): void {
  while (n !== null) {
    inorder(n.left, out);
    out.push(n);
    n = n.right;
  }
}

/** `struct vhost_iotlb`: the tree, the FIFO list, `limit`, `nmaps`, `flags`. */
export class VhostIotlb {
  private root: MapNode | null = null;
  private head: MapNode | null = null;
  private tail: MapNode | null = null;
  private seq = 0;
  private count = 0;

  /**
   * `vhost_iotlb_init(limit, flags)`. `limit` 0 means unlimited; a non-zero limit is only
   * enforced (by retiring the oldest entry) when `flags` has VHOST_IOTLB_FLAG_RETIRE.
   */
  constructor(
    readonly limit = 0,
    readonly flags = 0,
  ) {}

  /** `iotlb->nmaps`. */
  get nmaps(): number {
    return this.count;
  }

  /**
   * `vhost_iotlb_add_range_ctx`: 0, -EFAULT when last < start. [0, U64_MAX] becomes
   * [0, 2^63-1] and [2^63, U64_MAX] (the first insertion's result is ignored, as in the
   * kernel). With a limit, RETIRE and a full tree, the oldest entry is freed first.
   * No overlap check.
   */
  addRange(start: bigint, last: bigint, addr: bigint, perm: number, opaque: unknown = null): number {
    if (last < start) return -Errno.EFAULT;
    if (start === 0n && last === U64_MAX) {
      const mid = last / 2n;
      this.addRange(start, mid, addr, perm, opaque);
      addr = BigInt.asUintN(64, addr + mid + 1n);
      start = mid + 1n;
    }
    if (this.limit !== 0 && this.count === this.limit && (this.flags & VHOST_IOTLB_FLAG_RETIRE) !== 0) {
      this.mapFree(this.head!);
    }
    const node = new MapNode(start, last, addr, perm, opaque, this.seq++, this);
    this.count++;
    this.root = insertNode(this.root, node);
    node.prev = this.tail;
    if (this.tail !== null) this.tail.next = node;
    else this.head = node;
    this.tail = node;
    return 0;
  }

  /** `vhost_iotlb_map_free`: removes one entry of this tree. Returns false if it is not in this tree. */
  mapFree(map: VhostIotlbMap): boolean {
    if (!(map instanceof MapNode) || map.owner !== this || !this.contains(map)) return false;
    this.root = removeNode(this.root, map);
    if (map.prev !== null) map.prev.next = map.next;
    else this.head = map.next;
    if (map.next !== null) map.next.prev = map.prev;
    else this.tail = map.prev;
    map.prev = map.next = null;
    map.left = map.right = null;
    this.count--;
    return true;
  }

  /** `vhost_iotlb_del_range`: removes every entry overlapping [start, last], whole. Returns how many. */
  delRange(start: bigint, last: bigint): number {
    let n = 0;
    for (let m = this.first(start, last); m !== null; m = this.first(start, last)) {
      this.mapFree(m);
      n++;
    }
    return n;
  }

  /** `vhost_iotlb_reset`: del_range(0, U64_MAX). */
  reset(): void {
    this.delRange(0n, U64_MAX);
  }

  /** `vhost_iotlb_itree_first`: the first entry (by start, then age) overlapping [start, last], or null. */
  first(start: bigint, last: bigint): VhostIotlbMap | null {
    const r = this.root;
    if (r === null || r.subtreeLast < start) return null;
    return subtreeSearch(r, start, last);
  }

  /** Every entry overlapping [start, last], in itree_first/itree_next order. */
  overlapping(start: bigint, last: bigint): VhostIotlbMap[] {
    const out: MapNode[] = [];
    collect(this.root, start, last, out);
    return out;
  }

  /** All entries in tree order (start, then age). */
  entries(): VhostIotlbMap[] {
    const out: MapNode[] = [];
    inorder(this.root, out);
    return out;
  }

  /** All entries in insertion (FIFO list) order: the order RETIRE evicts them in. */
  listOrder(): VhostIotlbMap[] {
    const out: VhostIotlbMap[] = [];
    for (let m = this.head; m !== null; m = m.next) out.push(m);
    return out;
  }

  /**
   * Sets `map->addr` (what VHOST_IOTLB_REMAP does). Returns false if `map` is not an entry
   * of this tree.
   */
  setAddr(map: VhostIotlbMap, addr: bigint): boolean {
    if (!(map instanceof MapNode) || map.owner !== this || !this.contains(map)) return false;
    map.addr = addr;
    return true;
  }

  /** Tree height (for tests of the balance invariant). */
  get height(): number {
    return height(this.root);
  }

  /**
   * Checks the AVL and augmentation invariants and the list/tree agreement; returns a
   * description of the first violation, or null. O(n); for tests.
   */
  checkInvariants(): string | null {
    let err: string | null = null;
    const walk = (n: MapNode | null): { h: number; max: bigint } => {
      if (n === null) return { h: 0, max: -1n };
      const l = walk(n.left);
      const r = walk(n.right);
      if (n.left !== null && !before(n.left, n)) err ??= "left child not before parent";
      if (n.right !== null && !before(n, n.right)) err ??= "right child not after parent";
      const h = 1 + Math.max(l.h, r.h);
      if (h !== n.height) err ??= "stale height";
      if (Math.abs(l.h - r.h) > 1) err ??= "unbalanced";
      let max = n.last;
      if (l.max > max) max = l.max;
      if (r.max > max) max = r.max;
      if (max !== n.subtreeLast) err ??= "stale __subtree_last";
      return { h, max };
    };
    walk(this.root);
    const inTree = this.entries().length;
    if (inTree !== this.count) err ??= `nmaps ${this.count} but ${inTree} in tree`;
    if (this.listOrder().length !== this.count) err ??= "list length differs from nmaps";
    return err;
  }

  private contains(map: MapNode): boolean {
    let n = this.root;
    while (n !== null) {
      if (n === map) return true;
      n = before(map, n) ? n.left : n.right;
    }
    return false;
  }
}
