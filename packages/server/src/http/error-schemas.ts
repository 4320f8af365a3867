import { z } from "zod";
import { ERROR_STATUS, type ErrorCode } from "../errors.js";

const CODES = Object.keys(ERROR_STATUS) as [ErrorCode, ...ErrorCode[]];

/** The one error body (SPEC §4), with the closed code union of errors.ts. */
export const ErrorBodySchema = z
  .object({
    error: z.object({ code: z.enum(CODES), message: z.string(), request_id: z.string() }),
  })
  .meta({ id: "Error" });

/** List endpoints answer `{items, next_cursor}` (SPEC §3). */
export const pageOf = <T extends z.ZodType>(item: T) =>
  z.object({ items: z.array(item), next_cursor: z.string().nullable() });

/** Every time in a response is RFC 3339 (`iso()` in paging.ts) or null when unset. */
export const instant = z.iso.datetime({ offset: true });
