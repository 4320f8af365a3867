import { ResponseTooLargeError } from "../errors.js";

/** What to call the answer in the error, and which limit it ran into. */
export interface BodyLimit {
  /** e.g. `the answer of GET /v1/credentials`; never holds a secret. */
  what: string;
  /** The name of the setting in `limits`, e.g. `credentialsBytes`. */
  limit: string;
  maxBytes: number;
}

/**
 * The body's bytes, read chunk by chunk and refused as soon as they pass `maxBytes`: the reader is
 * cancelled at once (the transport then closes the connection), so a 3 GiB answer costs at most
 * the limit plus one chunk. A `Content-Length` above the limit is refused before reading, but one
 * within it is not believed: a compressed body decodes to more, a broken proxy lies.
 */
export async function readBoundedBytes(res: Response, l: BodyLimit): Promise<Uint8Array> {
  const declared = res.headers.get("content-length");
  if (declared !== null && /^\d+$/.test(declared.trim()) && Number(declared) > l.maxBytes) {
    await res.body?.cancel().catch(() => {});
    throw new ResponseTooLargeError(l.what, l.limit, l.maxBytes, { status: res.status });
  }
  if (res.body === null) return new Uint8Array(0);
  const reader = res.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > l.maxBytes) {
      await reader.cancel().catch(() => {});
      throw new ResponseTooLargeError(l.what, l.limit, l.maxBytes, { status: res.status });
    }
    chunks.push(value);
  }
  return chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks);
}

/** The body as UTF-8 text, within `l.maxBytes` (see {@link readBoundedBytes}). */
export async function readBoundedText(res: Response, l: BodyLimit): Promise<string> {
  return new TextDecoder().decode(await readBoundedBytes(res, l));
}

/**
 * The body parsed as JSON, within `l.maxBytes`. Throws {@link ResponseTooLargeError} past the
 * limit, a `SyntaxError` for text that is not JSON, and whatever the transport throws mid-body.
 */
export async function readBoundedJson(res: Response, l: BodyLimit): Promise<unknown> {
  return JSON.parse(await readBoundedText(res, l));
}
