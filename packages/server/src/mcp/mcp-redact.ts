import type { Redactor } from "@keyward/sdk/redaction";

/**
 * Redacts every string of a JSON value — text content, structuredContent (keys too), resource
 * text, `_meta`, error messages — so nothing an upstream returns is passed on unread. Binary
 * `blob` fields (base64) are also decoded and their bytes redacted: a secret inside a file's
 * bytes is no less a secret.
 */
export function redactJson<T>(value: T, redactor: Redactor): { value: T; count: number } {
  if (!redactor.active) return { value, count: 0 };
  let count = 0;
  const walk = (v: unknown, key?: string): unknown => {
    if (typeof v === "string") {
      const r = redactor.redactString(key === "blob" ? redactBlob(v, redactor, (n) => (count += n)) : v);
      count += r.count;
      return r.output;
    }
    if (Array.isArray(v)) return v.map((item) => walk(item));
    if (v !== null && typeof v === "object") {
      const out: Record<string, unknown> = {};
      for (const [k, inner] of Object.entries(v)) {
        const rk = redactor.redactString(k);
        count += rk.count;
        out[rk.output] = walk(inner, k);
      }
      return out;
    }
    return v;
  };
  return { value: walk(value) as T, count };
}

function redactBlob(b64: string, redactor: Redactor, counted: (n: number) => void): string {
  const bytes = Buffer.from(b64, "base64");
  const r = redactor.redact(bytes);
  if (r.count === 0) return b64;
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
