/**
 * Sharing through the URL: the trace (and optionally the migration controls) travel in the
 * page's hash as `#trace=…&scenario=…`, each value deflate-raw compressed and base64url
 * encoded, so nothing is sent to any server and a link reproduces the page.
 * Uses only CompressionStream, TextEncoder and btoa: present in browsers and in Node >= 20.
 */

/** What a shared link carries; either part may be absent. */
export interface SharedState {
  readonly trace?: string;
  /** JSON of the migration form (ScenarioForm), as the page wrote it. */
  readonly scenario?: string;
}

function toBase64Url(bytes: Uint8Array): string {
  let bin = "";
  for (let i = 0; i < bytes.length; i += 0x8000) bin += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(bin).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

function fromBase64Url(s: string): Uint8Array | null {
  if (!/^[A-Za-z0-9_-]*$/.test(s)) return null;
  try {
    const bin = atob(s.replace(/-/g, "+").replace(/_/g, "/"));
    return Uint8Array.from(bin, (c) => c.charCodeAt(0));
  } catch {
    return null;
  }
}

async function pipe(bytes: Uint8Array, stream: CompressionStream | DecompressionStream): Promise<Uint8Array> {
  const out = new Response(new Blob([new Uint8Array(bytes)]).stream().pipeThrough(stream));
  return new Uint8Array(await out.arrayBuffer());
}

/** `text` compressed and base64url encoded. */
export async function packText(text: string): Promise<string> {
  return toBase64Url(await pipe(new TextEncoder().encode(text), new CompressionStream("deflate-raw")));
}

/** The text `packText` packed, or null when `packed` is not such a value (a mangled link). */
export async function unpackText(packed: string): Promise<string | null> {
  const bytes = fromBase64Url(packed);
  if (bytes === null) return null;
  try {
    return new TextDecoder("utf-8", { fatal: true }).decode(await pipe(bytes, new DecompressionStream("deflate-raw")));
  } catch {
    return null;
  }
}

/** The hash (with its `#`) that carries `state`. */
export async function encodeHash(state: SharedState): Promise<string> {
  const parts: string[] = [];
  if (state.trace !== undefined) parts.push(`trace=${await packText(state.trace)}`);
  if (state.scenario !== undefined) parts.push(`scenario=${await packText(state.scenario)}`);
  return parts.length ? `#${parts.join("&")}` : "";
}

/** What a hash carries; parts that do not decode are left out. */
export async function decodeHash(hash: string): Promise<SharedState> {
  const params = new URLSearchParams(hash.replace(/^#/, ""));
  const out: { trace?: string; scenario?: string } = {};
  for (const key of ["trace", "scenario"] as const) {
    const v = params.get(key);
    if (v === null) continue;
    const text = await unpackText(v);
    if (text !== null) out[key] = text;
  }
  return out;
}
