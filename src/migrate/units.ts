/**
 * Parsing and printing of the quantities a migration scenario is written in: sizes
 * (`64G`, `2M`, `4KiB`), link and DMA rates (`10Gbit`, `1.25GB/s`) and durations (`300ms`).
 * Parsers return null on bad input; callers turn that into a usage error.
 */

/** Binary multipliers: `K`/`KiB` = 1024 and so on. Sizes of memory are always binary. */
const SIZE_UNITS: Readonly<Record<string, number>> = {
  "": 1,
  b: 1,
  k: 2 ** 10,
  kb: 2 ** 10,
  kib: 2 ** 10,
  m: 2 ** 20,
  mb: 2 ** 20,
  mib: 2 ** 20,
  g: 2 ** 30,
  gb: 2 ** 30,
  gib: 2 ** 30,
  t: 2 ** 40,
  tb: 2 ** 40,
  tib: 2 ** 40,
};

/** Parses a byte size such as `64G`, `3GiB`, `2M`, `4096`. Returns null when malformed. */
export function parseSize(text: string): number | null {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$/.exec(text);
  if (!m) return null;
  const mult = SIZE_UNITS[m[2].toLowerCase()];
  if (mult === undefined) return null;
  const v = Number(m[1]) * mult;
  return Number.isFinite(v) && Number.isInteger(v) ? v : null;
}

const DECIMAL: Readonly<Record<string, number>> = { "": 1, k: 1e3, m: 1e6, g: 1e9, t: 1e12 };

/**
 * Parses a rate in bytes per second. `b`/`bit`/`bps` mean bits (`10Gbit`, `10Gb`, `10Gbps`),
 * `B` means bytes (`1.25GB/s`, `800MB`); prefixes are decimal (link speeds are), with
 * `KiB`/`MiB`/`GiB` accepted as binary byte rates. A trailing `/s` is optional.
 */
export function parseRate(text: string): number | null {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([kKmMgGtT]?)(i?)(bit|bps|b|B)?(?:\/s)?\s*$/.exec(text);
  if (!m) return null;
  const n = Number(m[1]);
  const prefix = m[2].toLowerCase();
  const binary = m[3] === "i";
  const unit = m[4] ?? "B";
  if (binary && (prefix === "" || unit !== "B")) return null;
  const mult = binary ? (SIZE_UNITS[prefix] ?? NaN) : (DECIMAL[prefix] ?? NaN);
  const bytes = unit === "B" ? n * mult : (n * mult) / 8;
  return Number.isFinite(bytes) ? bytes : null;
}

/** Parses a duration into seconds: `300ms`, `1.5s`, `250us`, `2m`; a bare number is ms. */
export function parseDuration(text: string): number | null {
  const m = /^\s*(\d+(?:\.\d+)?)\s*(us|ms|s|m)?\s*$/.exec(text);
  if (!m) return null;
  const n = Number(m[1]);
  switch (m[2] ?? "ms") {
    case "us":
      return n / 1e6;
    case "ms":
      return n / 1e3;
    case "s":
      return n;
    default:
      return n * 60;
  }
}

/** Prints a byte count in binary units with up to 3 significant decimals: `64 GiB`, `1.5 MiB`. */
export function formatBytes(bytes: number): string {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let v = bytes;
  let i = 0;
  while (Math.abs(v) >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  const digits = i === 0 || v >= 100 ? 0 : v >= 10 ? 1 : 2;
  return `${Number(v.toFixed(digits))} ${units[i]}`;
}

/** Prints a link rate (bytes per second) in bits: `10 Gbit/s`. */
export function formatRate(bytesPerSecond: number): string {
  const bits = bytesPerSecond * 8;
  const units: Array<[number, string]> = [
    [1e12, "Tbit/s"],
    [1e9, "Gbit/s"],
    [1e6, "Mbit/s"],
    [1e3, "kbit/s"],
  ];
  for (const [mult, name] of units) if (bits >= mult) return `${Number((bits / mult).toPrecision(3))} ${name}`;
  return `${Number(bits.toPrecision(3))} bit/s`;
}

/** Prints a byte rate with decimal prefixes: `800 MB/s`. */
export function formatByteRate(bytesPerSecond: number): string {
  const units: Array<[number, string]> = [
    [1e12, "TB/s"],
    [1e9, "GB/s"],
    [1e6, "MB/s"],
    [1e3, "kB/s"],
  ];
  for (const [mult, name] of units) if (bytesPerSecond >= mult) return `${Number((bytesPerSecond / mult).toPrecision(3))} ${name}`;
  return `${Number(bytesPerSecond.toPrecision(3))} B/s`;
}

const MINUTE = 60;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;
const YEAR = 365.25 * DAY;

/**
 * Prints seconds with a unit that keeps 3 significant digits: `312 ms`, `55 s`, `2.1 µs`,
 * `45 min`; a link too slow for the guest gives `3.5 h`, `12 days`, `17400 years` rather
 * than millions of minutes.
 */
export function formatSeconds(s: number): string {
  if (s === 0) return "0 s";
  if (!Number.isFinite(s)) return s > 0 ? "forever" : String(s);
  if (s < 1e-3) return `${Number((s * 1e6).toPrecision(3))} µs`;
  if (s < 1) return `${Number((s * 1e3).toPrecision(3))} ms`;
  if (s < 10 * MINUTE) return `${Number(s.toPrecision(3))} s`;
  if (s < 2 * HOUR) return `${Number((s / MINUTE).toPrecision(3))} min`;
  if (s < 2 * DAY) return `${Number((s / HOUR).toPrecision(3))} h`;
  if (s < YEAR) return `${Number((s / DAY).toPrecision(3))} days`;
  const years = s / YEAR;
  return `${years < 1e6 ? Number(years.toPrecision(3)) : years.toPrecision(3)} years`;
}

/** Prints milliseconds of measured wall time: `0.42 ms`, `12.3 ms`. */
export function formatMs(ms: number): string {
  if (ms < 10) return `${ms.toFixed(2)} ms`;
  if (ms < 1000) return `${ms.toFixed(1)} ms`;
  return `${(ms / 1000).toFixed(2)} s`;
}
