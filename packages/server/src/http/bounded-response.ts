/** The answer was longer than the reader would take (its reader was cancelled at the bound). */
export class ResponseTooLargeError extends Error {
  constructor(readonly maxBytes: number) {
    super(`answered with more than ${maxBytes} bytes`);
    this.name = "ResponseTooLargeError";
  }
}

/**
 * A fetched response's body as text, refused as soon as it passes `maxBytes` (the reader is
 * cancelled, so a huge or endless answer costs at most the bound plus one chunk). A declared
 * `Content-Length` above the bound is refused before reading; one within it is not believed.
 * Transport failures mid-body are thrown as they come.
 */
export async function readBoundedText(res: Response, maxBytes: number): Promise<string> {
  const declared = res.headers.get("content-length");
  if (declared !== null && /^\d+$/.test(declared.trim()) && Number(declared) > maxBytes) {
    await res.body?.cancel().catch(() => {});
    throw new ResponseTooLargeError(maxBytes);
  }
  if (!res.body) return "";
  const chunks: Uint8Array[] = [];
  let size = 0;
  const reader = res.body.getReader();
  for (;;) {
    const part = await reader.read();
    if (part.done) break;
    size += part.value.length;
    if (size > maxBytes) {
      await reader.cancel().catch(() => {});
      throw new ResponseTooLargeError(maxBytes);
    }
    chunks.push(part.value);
  }
  return Buffer.concat(chunks).toString("utf8");
}
