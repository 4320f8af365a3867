import { z } from "zod";
import { KeywardError } from "../errors.js";
import { parseWith } from "./body.js";

/** Keyset pagination: the cursor is the last sort key seen, opaque to clients. */
export interface Page {
  limit: number;
  after: string | undefined;
}

/** `?limit=&cursor=` (also the documented query of every list). */
export const pageSchema = z.object({
  limit: z.coerce.number().int().min(1).max(1000).default(100),
  cursor: z.string().max(512).optional(),
});

export function parsePage(query: URLSearchParams): Page {
  const p = parseWith(
    pageSchema,
    { limit: query.get("limit") ?? undefined, cursor: query.get("cursor") ?? undefined },
    "query",
  );
  return { limit: p.limit, after: p.cursor === undefined ? undefined : decodeCursor(p.cursor) };
}

export function encodeCursor(key: string): string {
  return Buffer.from(key, "utf8").toString("base64url");
}

function decodeCursor(cursor: string): string {
  const key = Buffer.from(cursor, "base64url").toString("utf8");
  // PostgreSQL text cannot hold NUL (it would answer 500), and no sort key we hand out contains
  // one: such a cursor was not ours. Other control characters stay: keys we gave out may hold them.
  if (key.includes("\u0000")) throw new KeywardError("invalid_request", "cursor: not a cursor this list gave out");
  return key;
}

/** Stores fetch limit+1 rows; this trims and yields the next cursor. */
export function pageResult<T>(
  rows: T[],
  limit: number,
  keyOf: (row: T) => string,
): { items: T[]; next_cursor: string | null } {
  const more = rows.length > limit;
  const items = more ? rows.slice(0, limit) : rows;
  const last = items[items.length - 1];
  return { items, next_cursor: more && last !== undefined ? encodeCursor(keyOf(last)) : null };
}

/** Epoch ms → RFC 3339; an unset time stays null (and a set one is typed as always a string). */
export function iso(ms: number): string;
export function iso(ms: number | null | undefined): string | null;
export function iso(ms: number | null | undefined): string | null {
  return ms === null || ms === undefined ? null : new Date(ms).toISOString();
}
