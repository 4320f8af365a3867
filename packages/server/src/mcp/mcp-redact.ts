import { DEFAULT_MARKER, type Redactor } from "@keyward/sdk/redaction";

/**
 * Redacts every string of a JSON value — text content, structuredContent (keys too), resource
 * text, `_meta`, error messages — so nothing an upstream returns is passed on unread. Binary
 * fields (a resource's `blob`, an image's or audio's `data`) are base64: they are decoded, their
 * bytes redacted, and re-encoded canonically, because a secret inside a file's bytes is no less a
 * secret and base64 broken by line breaks (which clients decode) hides it from a text scan.
 * A number whose digits hold a secret (a PIN, an account number) becomes the marker.
 */
export function redactJson<T>(value: T, redactor: Redactor): { value: T; count: number } {
  if (!redactor.active) return { value, count: 0 };
  let count = 0;
  const counted = (n: number) => {
    count += n;
  };
  const walk = (v: unknown, binary = false): unknown => {
    if (typeof v === "string") {
      const r = redactor.redactString(binary ? redactBase64(v, redactor, counted) : v);
      count += r.count;
      return r.output;
    }
    if (typeof v === "number") {
      // JSON writes a finite number as String(n); that text is what the client reads.
      const r = redactor.redactString(String(v));
      count += r.count;
      return r.count > 0 ? DEFAULT_MARKER : v;
    }
    if (Array.isArray(v)) return v.map((item) => walk(item));
    if (v !== null && typeof v === "object") {
      const media = (v as { type?: unknown }).type === "image" || (v as { type?: unknown }).type === "audio";
      const out: Record<string, unknown> = {};
      for (const [k, inner] of Object.entries(v)) {
        const rk = redactor.redactString(k);
        count += rk.count;
        out[rk.output] = walk(inner, k === "blob" || (media && k === "data"));
      }
      return out;
    }
    return v;
  };
  return { value: walk(value) as T, count };
}

/** Always re-encoded, so the client decodes exactly the bytes that were scanned. */
function redactBase64(b64: string, redactor: Redactor, counted: (n: number) => void): string {
  const r = redactor.redact(Buffer.from(b64, "base64"));
  counted(r.count);
  return r.output.toString("base64");
}

interface TextItem {
  type: "text";
  text: string;
}

/**
 * A tool may write a secret across two text items ("AKIA12", "34…"): each alone is clean, the
 * model reads them joined. When the joined text holds more secrets than the items did one by one,
 * the consecutive text items are merged into one, redacted as a whole.
 */
export function redactAcrossTextItems(content: unknown[], redactor: Redactor): { content: unknown[]; count: number } {
  if (!redactor.active) return { content, count: 0 };
  const out: unknown[] = [];
  let count = 0;
  let run: TextItem[] = [];
  const flush = () => {
    if (run.length > 1) {
      const joined = run.map((t) => t.text).join("");
      const r = redactor.redactString(joined);
      if (r.count > 0) {
        out.push({ type: "text", text: r.output });
        count += r.count;
        run = [];
        return;
      }
    }
    out.push(...run);
    run = [];
  };
  for (const item of content) {
    if (isText(item)) run.push(item);
    else {
      flush();
      out.push(item);
    }
  }
  flush();
  return { content: out, count };
}

function isText(item: unknown): item is TextItem {
  return (
    typeof item === "object" &&
    item !== null &&
    (item as TextItem).type === "text" &&
    typeof (item as TextItem).text === "string"
  );
}
