import type { Consumer } from "../../consumers/consumers-schemas.js";
import { parseJsonObject, requiredFlag, stringFlag } from "../args.js";
import { type Command, type Group, getCommand, listCommand, segment } from "../command.js";
import { formatRecord, formatTable, NONE, shortTime, truncate } from "../table.js";

function metadataText(metadata: Consumer["metadata"]): string {
  return metadata && Object.keys(metadata).length > 0 ? JSON.stringify(metadata) : NONE;
}

export function consumerRecord(consumer: Consumer): string {
  return formatRecord([
    ["name", consumer.name],
    ["metadata", metadataText(consumer.metadata)],
    ["created", shortTime(consumer.created_at)],
    ["updated", shortTime(consumer.updated_at)],
  ]);
}

export function consumerTable(consumers: readonly Consumer[]): string {
  if (consumers.length === 0) return "no consumers\n";
  return formatTable(
    ["NAME", "METADATA", "CREATED"],
    consumers.map((c) => [c.name, truncate(metadataText(c.metadata), 50), shortTime(c.created_at)]),
  );
}

const create: Command = {
  usage: "create NAME [--metadata JSON]",
  args: ["NAME"],
  options: { metadata: { type: "string" } },
  async run(ctx) {
    const raw = stringFlag(ctx.values, "metadata");
    const body = {
      name: ctx.positionals[0],
      ...(raw !== undefined ? { metadata: parseJsonObject(raw, "metadata") } : {}),
    };
    const consumer = await ctx.client().request<Consumer>("POST", "/consumers", body);
    ctx.print(consumer, () => consumerRecord(consumer));
  },
};

const list = listCommand<Consumer>("/consumers", consumerTable);

const get = getCommand<Consumer>("/consumers", consumerRecord);

const update: Command = {
  usage: "update NAME --metadata JSON",
  args: ["NAME"],
  options: { metadata: { type: "string" } },
  async run(ctx) {
    const metadata = parseJsonObject(requiredFlag(ctx.values, "metadata"), "metadata");
    const path = `/consumers/${segment(ctx.positionals[0]!)}`;
    const consumer = await ctx.client().request<Consumer>("PATCH", path, { metadata });
    ctx.print(consumer, () => consumerRecord(consumer));
  },
};

const remove: Command = {
  usage: "delete NAME",
  args: ["NAME"],
  options: {},
  async run(ctx) {
    const name = ctx.positionals[0]!;
    await ctx.client().request<undefined>("DELETE", `/consumers/${segment(name)}`);
    // 204 has no body; --json prints nothing rather than inventing a response.
    if (!ctx.values.json) ctx.print(undefined, () => `deleted consumer ${name}\n`);
  },
};

export const consumers: Group = {
  name: "consumers",
  summary: "the callers that hold keys",
  commands: { create, list, get, update, delete: remove },
  flags: [["--metadata JSON", 'a JSON object, e.g. --metadata \'{"team":"ml"}\'']],
};
