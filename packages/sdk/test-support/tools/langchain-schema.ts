import type { ZodObjectV4 } from "@langchain/core/utils/types";
import type { z } from "zod";

/**
 * A zod object schema, typed the way @langchain/core 0.3's `tool()` wants it.
 *
 * @langchain/core 0.3 declares its schema types against the zod it depends on (3.25, installed
 * under it, whose v4 core says version 4.0); this repository's zod is 4.6. At run time langchain
 * accepts any zod 4 schema (it reads the schema's `_zod` internals), but the two copies'
 * declarations never match (version literals, private members), so `tool(fn, {schema})` finds no
 * overload. The value returned is the schema itself; only its static type changes, to langchain's
 * zod 4 object carrying this schema's own input and output types, so `tool()` still checks the
 * tool function against the schema.
 */
export function langchainSchema<S extends z.ZodObject>(
  schema: S,
): ZodObjectV4 & { _zod: { input: z.input<S>; output: z.output<S> } } {
  return schema as unknown as ZodObjectV4 & { _zod: { input: z.input<S>; output: z.output<S> } };
}
