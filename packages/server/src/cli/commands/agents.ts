import type { Agent } from "../../agents/agents-schemas.js";
import { requiredFlag, stringFlag, UsageError } from "../args.js";
import { type Command, type Group, getCommand, listCommand, segment } from "../command.js";
import { formatRecord, formatTable, orNone, shortTime, truncate } from "../table.js";

export function agentRecord(agent: Agent): string {
  return formatRecord([
    ["name", agent.name],
    ["upstream", agent.upstream],
    ["description", orNone(agent.description)],
    ["created", shortTime(agent.created_at)],
    ["updated", shortTime(agent.updated_at)],
  ]);
}

export function agentTable(agents: readonly Agent[]): string {
  if (agents.length === 0) return "no agents\n";
  return formatTable(
    ["NAME", "UPSTREAM", "DESCRIPTION", "CREATED"],
    agents.map((a) => [a.name, a.upstream, truncate(orNone(a.description), 40), shortTime(a.created_at)]),
  );
}

const create: Command = {
  usage: "create NAME --upstream URL [--description TEXT]",
  args: ["NAME"],
  options: { upstream: { type: "string" }, description: { type: "string" } },
  async run(ctx) {
    const [name] = ctx.positionals;
    const upstream = requiredFlag(ctx.values, "upstream");
    const description = stringFlag(ctx.values, "description");
    const body = { name, upstream, ...(description !== undefined ? { description } : {}) };
    const agent = await ctx.client().request<Agent>("POST", "/agents", body);
    ctx.print(agent, () => agentRecord(agent));
  },
};

const list = listCommand<Agent>("/agents", agentTable);

const get = getCommand<Agent>("/agents", agentRecord);

const update: Command = {
  usage: "update NAME [--upstream URL] [--description TEXT | --no-description]",
  args: ["NAME"],
  options: { upstream: { type: "string" }, description: { type: "string" }, "no-description": { type: "boolean" } },
  async run(ctx) {
    const upstream = stringFlag(ctx.values, "upstream");
    let description: string | null | undefined = stringFlag(ctx.values, "description");
    if (ctx.values["no-description"]) {
      if (description !== undefined) throw new UsageError("--description and --no-description cannot be combined");
      description = null;
    }
    if (upstream === undefined && description === undefined) {
      throw new UsageError("nothing to update: pass --upstream and/or --description");
    }
    const body = {
      ...(upstream !== undefined ? { upstream } : {}),
      ...(description !== undefined ? { description } : {}),
    };
    const agent = await ctx.client().request<Agent>("PATCH", `/agents/${segment(ctx.positionals[0]!)}`, body);
    ctx.print(agent, () => agentRecord(agent));
  },
};

const remove: Command = {
  usage: "delete NAME",
  args: ["NAME"],
  options: {},
  async run(ctx) {
    const name = ctx.positionals[0]!;
    await ctx.client().request<undefined>("DELETE", `/agents/${segment(name)}`);
    // 204 has no body; --json prints nothing rather than inventing a response.
    if (!ctx.values.json) ctx.print(undefined, () => `deleted agent ${name}\n`);
  },
};

export const agents: Group = {
  name: "agents",
  summary: "the agents Keyward protects",
  commands: { create, list, get, update, delete: remove },
};
