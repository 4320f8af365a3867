import { z } from "zod";

/** List endpoints answer `{items, next_cursor}` (SPEC §3). */
export const pageOf = <T extends z.ZodType>(item: T) =>
  z.object({ items: z.array(item), next_cursor: z.string().nullable() });

/** Every time in a response is RFC 3339 (`iso()` in paging.ts) or null when unset. */
export const instant = z.iso.datetime({ offset: true });
