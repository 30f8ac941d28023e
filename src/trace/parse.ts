/**
 * The vfio-trace script syntax exactly as the oracle's runner (vfio-trace-run.c) reads it:
 * fgets lines, '#' comments, strtok on blanks, `key=value` words matched by prefix, and
 * numbers through strtoull(v, NULL, 0) (decimal, 0x hex, leading-0 octal, wrap on '-').
 */
import { argString } from "../util/args";

/** ULLONG_MAX. */
const ULLONG_MAX = 0xffff_ffff_ffff_ffffn;

/** strtoull(s, NULL, 0) as glibc computes it (overflow saturates at ULLONG_MAX). */
export function strtoull(s: string): bigint {
  let i = 0;
  while (i < s.length && " \t\n\v\f\r".includes(s[i])) i++;
  let neg = false;
  if (s[i] === "+" || s[i] === "-") {
    neg = s[i] === "-";
    i++;
  }
  let base = 10;
  if (s[i] === "0" && (s[i + 1] === "x" || s[i + 1] === "X") && /[0-9a-fA-F]/.test(s[i + 2] ?? "")) {
    base = 16;
    i += 2;
  } else if (s[i] === "0") {
    base = 8;
  }
  let v = 0n;
  let overflow = false;
  const B = BigInt(base);
  for (; i < s.length; i++) {
    const d = parseInt(s[i], 36);
    if (Number.isNaN(d) || d >= base) break;
    v = v * B + BigInt(d);
    if (v > ULLONG_MAX) overflow = true;
  }
  if (overflow) return ULLONG_MAX;
  return neg ? (-v) & ULLONG_MAX : v;
}

/** One script line after tokenising. */
export interface TraceLine {
  /** 1-based line number in the file. */
  lineno: number;
  /** Words: verb first. */
  toks: string[];
}

/** The runner's fgets() buffer holds 1023 bytes of a line; the rest comes as further "lines". */
export const FGETS_PIECE = 1023;
/** strtok keeps at most this many words of a line. */
export const MAX_WORDS = 32;

/** The pieces fgets() returns, in order: line N of the output is piece N-1. */
export function fgetsPieces(text: string): string[] {
  const raw: string[] = [];
  let start = 0;
  while (start < text.length) {
    const nl = text.indexOf("\n", start);
    const end = nl < 0 ? text.length : nl + 1;
    for (let p = start; p < end; p += FGETS_PIECE) raw.push(text.slice(p, Math.min(end, p + FGETS_PIECE)));
    start = end;
  }
  return raw;
}

/** Every word of one piece, before the runner's 32-word cut: comment stripped, blanks split. */
export function wordsOf(piece: string): string[] {
  const hash = piece.indexOf("#");
  const body = hash >= 0 ? piece.slice(0, hash) : piece;
  return body.split(/[ \t\r\n]+/).filter((t) => t.length > 0);
}

/** Splits a script into non-empty lines the way the runner does (fgets with a 1024-byte buffer). */
export function parseTrace(text: string): TraceLine[] {
  argString("text", text);
  const out: TraceLine[] = [];
  // fgets() returns at most 1023 bytes per call; longer lines are read in pieces, each counted.
  fgetsPieces(text).forEach((line, i) => {
    const toks = wordsOf(line).slice(0, MAX_WORDS);
    if (toks.length) out.push({ lineno: i + 1, toks });
  });
  return out;
}

/** The value of `key=` among the words after the verb, or null (first match wins). */
export function sval(toks: readonly string[], key: string): string | null {
  for (let i = 1; i < toks.length; i++) if (toks[i].startsWith(key) && toks[i][key.length] === "=") return toks[i].slice(key.length + 1);
  return null;
}

/** addr(): `+N` is base + N, else an absolute number. */
export function addrOf(v: string, base: bigint): bigint {
  return v[0] === "+" ? (base + strtoull(v.slice(1))) & ULLONG_MAX : strtoull(v);
}

/** num(key, def): `unlimited` is RLIM_INFINITY; `+N` works here too. */
export function numOf(toks: readonly string[], key: string, def: bigint, base: bigint): bigint {
  const v = sval(toks, key);
  if (v === null) return def;
  if (v === "unlimited") return ULLONG_MAX;
  return addrOf(v, base);
}
