import { z } from "zod";

type Json = Record<string, unknown>;

/**
 * Turns zod schemas into the document's JSON Schemas (draft 2020-12, which OpenAPI 3.1 uses).
 * Schemas named with `.meta({id})` become `components.schemas` entries and are referenced,
 * everything else is inlined. Requests are described as they are read (`io: "input"`: a field
 * with a default is optional), responses as they are built.
 */
export class SchemaCollector {
  readonly components: Record<string, Json> = {};

  convert(schema: z.ZodType, io: "input" | "output"): Json {
    const converted = z.toJSONSchema(schema, {
      target: "draft-2020-12",
      io,
      // Transforms and custom checks (refine) cannot be written as JSON Schema: the parsed input
      // is documented, the extra rule lives in the field's description or the route's summary.
      unrepresentable: "any",
    }) as Json;
    const { $schema: _, $defs, ...root } = converted;
    const rename = new Map<string, string>();
    for (const [name, def] of Object.entries(($defs ?? {}) as Record<string, Json>)) {
      rename.set(name, this.hoist(name, rewriteRefs(def, rename), io));
    }
    // A named schema comes back as `{$ref}` to its own `$defs` entry, so it too is referenced.
    return rewriteRefs(root, rename);
  }

  /** A named schema read in both directions may differ (defaults): the input form gets its own name. */
  private hoist(name: string, def: Json, io: "input" | "output"): string {
    for (const candidate of [name, `${name}Input`]) {
      const existing = this.components[candidate];
      if (existing === undefined) {
        this.components[candidate] = def;
        return candidate;
      }
      if (JSON.stringify(existing) === JSON.stringify(def)) return candidate;
      if (io === "output") break;
    }
    throw new Error(`two different schemas are named ${name}`);
  }
}

function rewriteRefs(node: unknown, rename: ReadonlyMap<string, string>): Json {
  return JSON.parse(
    JSON.stringify(node, (key, value) => {
      if (key === "$ref" && typeof value === "string" && value.startsWith("#/$defs/")) {
        const name = value.slice("#/$defs/".length);
        return `#/components/schemas/${rename.get(name) ?? name}`;
      }
      return value;
    }),
  ) as Json;
}
