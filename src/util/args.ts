/**
 * Argument checks for the public JS API. A kernel error is a value (an errno); a
 * programmer error — NaN, a wrong type, a negative limit — is not something any kernel
 * could answer, so it throws: TypeError for the wrong kind of value, RangeError for a value
 * of the right kind outside what the argument can hold. Every message names the argument.
 * Used at the public boundaries only (src/process, src/type1/api.ts, src/trace,
 * src/vhost/api.ts, src/iommufd), never inside the model.
 */

const U64_LIMIT = 1n << 64n;
const S64_MIN = -(1n << 63n);

function show(v: unknown): string {
  if (typeof v === "bigint") return `${v}n`;
  if (typeof v === "string") return JSON.stringify(v.length > 40 ? v.slice(0, 40) + "..." : v);
  if (v === null) return "null";
  if (typeof v === "object") return Array.isArray(v) ? "an array" : "an object";
  return String(v);
}

/** An integer given as a bigint or a safe-integer number, as a bigint; else TypeError. */
function integer(name: string, v: unknown): bigint {
  if (typeof v === "bigint") return v;
  if (typeof v === "number" && Number.isSafeInteger(v)) return BigInt(v);
  throw new TypeError(`${name} must be an integer (bigint or safe integer number), got ${show(v)}`);
}

/** A u64 (0 .. 2^64-1) given as bigint or number. */
export function argU64(name: string, v: unknown): bigint {
  const x = integer(name, v);
  if (x < 0n || x >= U64_LIMIT) throw new RangeError(`${name} must be in 0 .. 2^64-1, got ${show(v)}`);
  return x;
}

/**
 * An `unsigned long` argument as C would pass it: any integer from -2^63 to 2^64-1, the
 * negative ones wrapped to their two's complement (ioctl(fd, cmd, -1) passes ~0UL).
 */
export function argULong(name: string, v: unknown): bigint {
  // A u64 bigint (every ioctl pointer argument) is already what C would pass.
  if (typeof v === "bigint" && v >= 0n && v < U64_LIMIT) return v;
  const x = integer(name, v);
  if (x < S64_MIN || x >= U64_LIMIT) throw new RangeError(`${name} must be in -2^63 .. 2^64-1, got ${show(v)}`);
  return BigInt.asUintN(64, x);
}

/** An integer number in [min, max]. */
export function argInt(name: string, v: unknown, min = Number.MIN_SAFE_INTEGER, max = Number.MAX_SAFE_INTEGER): number {
  if (typeof v !== "number" || !Number.isInteger(v)) throw new TypeError(`${name} must be an integer number, got ${show(v)}`);
  if (v < min || v > max) throw new RangeError(`${name} must be in ${min} .. ${max}, got ${v}`);
  return v;
}

/** A number or bigint that is a whole number (the range is the kernel's to judge). */
export function argWhole(name: string, v: unknown): bigint | number {
  if (typeof v === "bigint") return v;
  if (typeof v === "number" && Number.isInteger(v)) return v;
  throw new TypeError(`${name} must be an integer (bigint or number), got ${show(v)}`);
}

/** A boolean. */
export function argBool(name: string, v: unknown): boolean {
  if (typeof v !== "boolean") throw new TypeError(`${name} must be a boolean, got ${show(v)}`);
  return v;
}

/** A string. */
export function argString(name: string, v: unknown): string {
  if (typeof v !== "string") throw new TypeError(`${name} must be a string, got ${show(v)}`);
  return v;
}

/** A non-null object (options bags, request structs). */
export function argObject<T extends object>(name: string, v: T | unknown): T {
  if (typeof v !== "object" || v === null || Array.isArray(v)) throw new TypeError(`${name} must be an object, got ${show(v)}`);
  return v as T;
}

/** A function. */
export function argFunction<T>(name: string, v: T | unknown): T {
  if (typeof v !== "function") throw new TypeError(`${name} must be a function, got ${show(v)}`);
  return v as T;
}

/** A Uint8Array. */
export function argBytes(name: string, v: unknown): Uint8Array {
  if (!(v instanceof Uint8Array)) throw new TypeError(`${name} must be a Uint8Array, got ${show(v)}`);
  return v;
}
