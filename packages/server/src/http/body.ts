import type { IncomingMessage } from "node:http";
import type { z } from "zod";
import { KeywardError } from "../errors.js";

export const MAX_BODY_BYTES = 1024 * 1024;

/** Reads the whole body, refusing more than `limit` bytes (413) without buffering the excess. */
export async function readBody(req: IncomingMessage, limit = MAX_BODY_BYTES): Promise<Buffer> {
  const declared = Number(req.headers["content-length"]);
  if (Number.isFinite(declared) && declared > limit) {
    req.resume();
    throw new KeywardError("payload_too_large", `request body is larger than ${limit} bytes`);
  }
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > limit) {
      req.resume();
      throw new KeywardError("payload_too_large", `request body is larger than ${limit} bytes`);
    }
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks);
}

/** Parses a JSON body (an empty body is `{}`) and validates it with a zod schema. */
export async function readJson<T>(req: IncomingMessage, schema: z.ZodType<T>, limit = MAX_BODY_BYTES): Promise<T> {
  const raw = await readBody(req, limit);
  let value: unknown = {};
  if (raw.length > 0) {
    const type = req.headers["content-type"] ?? "application/json";
    if (!/^application\/([a-z0-9.+-]*\+)?json\b/i.test(type)) {
      throw new KeywardError("unsupported_media_type", "request body must be application/json");
    }
    const text = raw.toString("utf8");
    try {
      value = JSON.parse(text);
    } catch {
      throw new KeywardError("invalid_request", "request body is not valid JSON");
    }
    // PostgreSQL text cannot hold NUL, and no field of ours needs it: refuse it at the edge.
    if (text.includes("\\u0000"))
      throw new KeywardError("invalid_request", "request body must not contain NUL characters");
  }
  return parseWith(schema, value, "body");
}

/** Validates `value`, turning zod's issues into one readable invalid_request message. */
export function parseWith<T>(schema: z.ZodType<T>, value: unknown, where: string): T {
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  const issue = result.error.issues[0];
  const path = issue && issue.path.length > 0 ? `${where}.${issue.path.join(".")}` : where;
  throw new KeywardError("invalid_request", `${path}: ${issue?.message ?? "invalid"}`);
}
