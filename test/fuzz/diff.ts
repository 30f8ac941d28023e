/** Deep equality and the first difference of two snapshots (plain data with bigints). */

export function isEqual(a: unknown, b: unknown): boolean {
  return firstDiff(a, b) === null;
}

/** The path and values of the first difference, or null when equal. */
export function firstDiff(a: unknown, b: unknown, path = "$"): string | null {
  if (a === b) return null;
  if (typeof a !== typeof b || a === null || b === null || typeof a !== "object") {
    if (typeof a === "number" && typeof b === "number" && Number.isNaN(a) && Number.isNaN(b)) return null;
    return `${path}: ${show(a)} -> ${show(b)}`;
  }
  if (Array.isArray(a) !== Array.isArray(b)) return `${path}: shape`;
  if (Array.isArray(a)) {
    const bb = b as unknown[];
    if (a.length !== bb.length) return `${path}.length: ${a.length} -> ${bb.length}`;
    for (let i = 0; i < a.length; i++) {
      const d = firstDiff(a[i], bb[i], `${path}[${i}]`);
      if (d) return d;
    }
    return null;
  }
  const ao = a as Record<string, unknown>;
  const bo = b as Record<string, unknown>;
  for (const k of new Set([...Object.keys(ao), ...Object.keys(bo)])) {
    const d = firstDiff(ao[k], bo[k], `${path}.${k}`);
    if (d) return d;
  }
  return null;
}

function show(v: unknown): string {
  if (typeof v === "bigint") return `0x${v.toString(16)}`;
  if (typeof v === "string") return v.length > 40 ? JSON.stringify(v.slice(0, 40) + "…") : JSON.stringify(v);
  try {
    const s = JSON.stringify(v, (_k, x) => (typeof x === "bigint" ? `0x${x.toString(16)}` : x));
    return s === undefined ? String(v) : s.length > 80 ? s.slice(0, 80) + "…" : s;
  } catch {
    return String(v);
  }
}
