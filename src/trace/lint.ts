/**
 * What a vfio-trace script says that the runner would ignore or read otherwise than the
 * writer meant: verbs it does not know (they print `= -1 UNKNOWN-OP`), keys the verb does
 * not read, numbers strtoull() stops short in (`size=4k` is 4), `$NAME`s nothing set,
 * repeated keys (the first wins), words past the 32nd, lines past 1023 bytes. The runner
 * itself accepts all of these silently, and so does the replay: this only finds them
 * (`vfio-sim replay` warns, `--strict` refuses). The verb and key tables are those of
 * src/trace/replay.ts and src/trace/iommufd.ts (see src/trace/trace-format.md).
 */
import { argString } from "../util/args";
import { FGETS_PIECE, MAX_WORDS, fgetsPieces, wordsOf } from "./parse";

/** One finding: the script's line (as the output numbers it) and what is wrong there. */
export interface TraceProblem {
  readonly lineno: number;
  readonly message: string;
}

/** How a key's value is read. */
type Kind =
  | "num" // num(): strtoull, `+N` (arena), `unlimited`; in the iommufd verbs also `$NAME[+N]`
  | "addr" // addr(): strtoull or `+N`
  | "prot" // none, r, rw
  | "hex" // poke's bytes
  | "ranges" // S-L,S-L,...
  | "logranges" // IOVA:LENGTH,... (the mtty world's log_start)
  | "name" // as=NAME
  | "word"; // any word (dev_open's via= and name=)

type Keys = Readonly<Record<string, Kind>>;

const COMMON: Readonly<Record<string, Keys>> = {
  mprotect: { addr: "addr", size: "num", prot: "prot" },
  munmap: { addr: "addr", size: "num" },
  fill: { addr: "addr", size: "num", byte: "num" },
  peek: { addr: "addr", size: "num" },
  memlock: { bytes: "num" },
  cap_ipc_lock: { on: "num" },
  locked: {},
};

const MAP: Keys = { argsz: "num", flags: "num", vaddr: "addr", iova: "num", size: "num" };
const BITMAP: Keys = { argsz: "num", flags: "num", iova: "num", size: "num", pgsize: "num", bitmap_size: "num", data: "addr", show: "num" };
const TYPE1: Readonly<Record<string, Keys>> = {
  map: MAP,
  maps: { ...MAP, count: "num", iova_step: "num", vaddr_step: "num" },
  unmap: BITMAP,
  dirty: BITMAP,
  info: { argsz: "num" },
  ext: { id: "num" },
};

/** Keys of every iommufd call that stages a struct (stage() and call()). */
const STRUCT: Keys = { size: "num", tail: "num", at: "num", ro: "num" };
/** ...and of those that keep what they return under `as=NAME` too. */
const KEEPS: Keys = { ...STRUCT, as: "name" };
const IOMMUFD: Readonly<Record<string, Keys>> = {
  pinned: {},
  cap_sys_resource: { on: "num" },
  poke: { addr: "num", hex: "hex" },
  ioas_alloc: { ...KEEPS, flags: "num" },
  ioas_map: { ...KEEPS, flags: "num", ioas: "num", user_va: "num", length: "num", iova: "num" },
  ioas_copy: { ...KEEPS, flags: "num", dst: "num", src: "num", length: "num", dst_iova: "num", src_iova: "num" },
  ioas_unmap: { ...STRUCT, ioas: "num", iova: "num", length: "num" },
  iova_ranges: { ...STRUCT, ioas: "num", num: "num", data: "num" },
  allow_iovas: { ...STRUCT, ioas: "num", ranges: "ranges", num: "num", data: "num" },
  option: { ...STRUCT, option: "num", op: "num", object: "num", val: "num" },
  hwpt_alloc: { ...KEEPS, flags: "num", dev: "num", pt: "num", data_type: "num", data_len: "num", data: "num", fault_id: "num" },
  hw_info: { ...STRUCT, flags: "num", dev: "num", data_len: "num", data: "num", show: "num" },
  set_dirty: { ...STRUCT, flags: "num", hwpt: "num" },
  get_dirty: { ...STRUCT, hwpt: "num", flags: "num", iova: "num", length: "num", page_size: "num", data: "num", show: "num" },
  destroy: { ...STRUCT, id: "num" },
  mock_domain: { ...KEEPS, id: "num", dev_flags: "num" },
  mock_domain_replace: { ...STRUCT, id: "num", pt: "num" },
  add_reserved: { ...STRUCT, ioas: "num", iova: "num", length: "num" },
  test_dirty: { ...STRUCT, hwpt: "num", iova: "num", length: "num", page_size: "num", bits: "num", data: "num" },
  md_check_map: { ...STRUCT, hwpt: "num", iova: "num", length: "num", uptr: "num" },
  cdev_open: {},
  cdev_close: {},
  bind: { ...KEEPS, flags: "num", fd: "num" },
  attach: { ...KEEPS, flags: "num", pt: "num" },
  detach: { ...STRUCT, flags: "num" },
  device_info: { ...STRUCT },
};

/** The mtty world's device-fd verbs (src/trace/mtty.ts), besides the iommufd ones. */
const FEATURE: Keys = { ...STRUCT, flags: "num" };
const MTTY: Readonly<Record<string, Keys>> = {
  dev_open: { via: "word", bind: "num", container: "num", iommu: "num", name: "word" },
  dev_close: {},
  feature: { ...FEATURE, hex: "hex" },
  migration: FEATURE,
  mig_get: FEATURE,
  mig_set: { ...FEATURE, state: "num", data_fd: "num" },
  data_size: FEATURE,
  log_start: { ...FEATURE, ranges: "logranges", page_size: "num", num: "num", data: "num" },
  log_stop: FEATURE,
  log_report: { ...FEATURE, iova: "num", length: "num", page_size: "num", data: "num", show: "num" },
  precopy: { ...STRUCT, fd: "num" },
  data_read: { fd: "num", buf: "num", count: "num" },
  data_write: { fd: "num", buf: "num", count: "num" },
  data_close: { fd: "num" },
  reset: {},
  dev_ioctl: { cmd: "num", arg: "num" },
};

/** The `$NAME`s each iommufd verb sets when it succeeds (besides `as=NAME`). */
const SETS: Readonly<Record<string, readonly string[]>> = {
  ioas_alloc: ["ioas"],
  ioas_map: ["iova"],
  ioas_copy: ["iova"],
  hwpt_alloc: ["hwpt"],
  mock_domain: ["stdev", "hwpt", "idev"],
  bind: ["devid"],
  attach: ["pt"],
  mig_set: ["data"],
};

/** A whole strtoull() number: what `strtoull(v, &end, 0)` reads up to the end of the word. */
const STRTOULL = /^[+-]?(0[xX][0-9a-fA-F]+|0[0-7]*|[1-9][0-9]*)$/;
const RANGE_NUM = "[+-]?(?:0[xX][0-9a-fA-F]+|0[0-7]*|[1-9][0-9]*)";
const LOGRANGES = new RegExp(`^${RANGE_NUM}(?::${RANGE_NUM})?(?:,${RANGE_NUM}(?::${RANGE_NUM})?)*$`);
const RANGES = new RegExp(`^${RANGE_NUM}(?:-${RANGE_NUM})?(?:,${RANGE_NUM}(?:-${RANGE_NUM})?)*$`);

/**
 * Why `v` is not a whole number to strtoull(), or null when it is. Numbers past 64 bits are
 * whole (strtoull saturates them, as documented); `size=4k` or `iova=0x-1000` are not: the
 * runner reads 4 and 0.
 */
function badNumber(v: string): string | null {
  return STRTOULL.test(v) ? null : "not a whole number: strtoull() reads decimal, 0x hex or 0-octal, optionally signed, and stops at the first other character";
}

/** Lints a script; an empty list means the runner reads every word as written. */
export function lintTrace(text: string): TraceProblem[] {
  argString("text", text);
  const problems: TraceProblem[] = [];
  const pieces = fgetsPieces(text);
  let world: "type1" | "mock" | "edu" | "mtty" | null = null;
  let names = new Set<string>();
  let continued = false; // the previous piece did not end its line
  pieces.forEach((piece, i) => {
    const lineno = i + 1;
    const say = (message: string): void => void problems.push({ lineno, message });
    const wasContinued = continued;
    continued = piece.length === FGETS_PIECE && !piece.endsWith("\n");
    if (continued && !wasContinued) say(`line longer than ${FGETS_PIECE} bytes: the runner reads it in pieces, each a line of its own`);
    const words = wordsOf(piece);
    if (words.length === 0) return;
    if (words.length > MAX_WORDS) say(`${words.length} words: the runner reads the first ${MAX_WORDS} and ignores '${words[MAX_WORDS]}' and after`);
    const toks = words.slice(0, MAX_WORDS);
    const verb = toks[0];
    if (world === null) {
      if (verb === "world" && (toks[1] === "mock" || toks[1] === "edu" || toks[1] === "mtty")) {
        world = toks[1];
        for (const w of toks.slice(2)) say(`'${w}' after 'world ${toks[1]}' is ignored`);
        return;
      }
      world = "type1";
      if (verb === "world") {
        say(`unknown world '${toks[1] ?? ""}' (mock, edu or mtty): the script runs in the type1 world and this line is an unknown verb`);
        return;
      }
    }
    const iommufd = world !== "type1";
    let keys: Keys | undefined;
    let named = 1; // words before the key=value ones
    if (verb === "case") {
      keys = iommufd ? { arena: "num" } : { arena: "num", iommu: "num" };
      named = 2;
      names = new Set();
    } else {
      keys = COMMON[verb] ?? (iommufd ? (IOMMUFD[verb] ?? (world === "mtty" ? MTTY[verb] : undefined)) : TYPE1[verb]);
    }
    if (keys === undefined) {
      const where = iommufd ? (world === "mtty" ? { ...IOMMUFD, ...MTTY } : IOMMUFD) : TYPE1;
      const other = iommufd ? TYPE1[verb] : IOMMUFD[verb];
      if (verb === "world") say("'world' chooses the world on the first line only; here it is an unknown verb (the runner prints UNKNOWN-OP)");
      else if (other) say(`'${verb}' is not a verb of the ${world} world${iommufd ? " (a type1 verb: there is no container, it fails with EBADF)" : " (an iommufd verb: the runner prints UNKNOWN-OP)"}`);
      else say(`unknown verb '${verb}' (the runner prints UNKNOWN-OP)${suggest(verb, [...Object.keys(COMMON), ...Object.keys(where), "case"])}`);
      return;
    }
    const seen = new Map<string, string>();
    for (const w of toks.slice(named)) {
      const eq = w.indexOf("=");
      if (eq <= 0) {
        say(`'${w}' is not a key=value word; the runner ignores it`);
        continue;
      }
      const key = w.slice(0, eq);
      const value = w.slice(eq + 1);
      const kind = keys[key];
      if (kind === undefined) {
        const known = Object.keys(keys);
        say(`unknown key '${key}' for ${verb}${suggest(key, known)} (${known.length ? `keys: ${known.join(", ")}` : "it takes none"}); the runner ignores it`);
        continue;
      }
      const first = seen.get(key);
      if (first !== undefined) {
        say(`${key}= given twice: the runner uses the first (${first}) and ignores ${value}`);
        continue;
      }
      seen.set(key, value);
      const bad = badValue(kind, value, iommufd && verb !== "case" && !(verb in COMMON), names);
      if (bad) say(`${key}=${value}: ${bad}`);
    }
    if (iommufd) {
      for (const n of SETS[verb] ?? []) names.add(n);
      const as = seen.get("as");
      if (as !== undefined) {
        names.add(as);
        if (verb === "mock_domain") names.add(`${as}_hwpt`).add(`${as}_idev`);
      }
    }
  });
  return problems;
}

/** Why a value is not what its key reads, or null. `dollar`: the verb's num() knows `$NAME`. */
function badValue(kind: Kind, v: string, dollar: boolean, names: ReadonlySet<string>): string | null {
  switch (kind) {
    case "prot":
      return v === "none" || v === "r" || v === "rw" ? null : "prot is none, r or rw (the runner reads anything else as rw)";
    case "hex":
      return /^([0-9a-fA-F]{2})*$/.test(v) ? null : "hex= is pairs of hex digits";
    case "logranges":
      return LOGRANGES.test(v) ? null : "ranges= is IOVA:LENGTH,IOVA:LENGTH,... in numbers strtoull() reads whole";
    case "ranges":
      return RANGES.test(v) ? null : "ranges= is START-LAST,START-LAST,... in numbers strtoull() reads whole";
    case "word":
      return null;
    case "name":
      return v.length < 32 ? null : "names are at most 31 characters (the runner does not keep longer ones)";
    case "num":
    case "addr": {
      if (kind === "num" && v === "unlimited") return null;
      if (v.startsWith("$")) {
        if (!dollar) return "$NAME values are read by the iommufd verbs only";
        const plus = v.indexOf("+");
        const name = (plus >= 0 ? v.slice(1, plus) : v.slice(1)).slice(0, 31);
        if (!names.has(name)) return `nothing in this case sets $${name} (it reads as 0)`;
        return plus >= 0 ? badNumber(v.slice(plus + 1)) : null;
      }
      return badNumber(v.startsWith("+") ? v.slice(1) : v);
    }
  }
}

/** "; did you mean 'x'?" for a word one or two edits from a known one. */
function suggest(word: string, known: readonly string[]): string {
  let best: string | null = null;
  let bestD = 3;
  for (const k of known) {
    const d = distance(word, k);
    if (d < bestD) [best, bestD] = [k, d];
  }
  return best === null ? "" : `; did you mean '${best}'?`;
}

function distance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) cur[j] = Math.min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
    prev = cur;
  }
  return prev[b.length];
}
