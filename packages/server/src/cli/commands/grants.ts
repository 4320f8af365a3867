import type { Grants as GrantsView } from "../../credentials/credentials-schemas.js";
import { parseList, stringFlag, UsageError } from "../args.js";
import { type Command, type Group, segment } from "../command.js";
import { formatRecord, NONE } from "../table.js";

function grantsRecord(g: GrantsView): string {
  const of = (mode: string) =>
    g.credentials
      .filter((c) => c.mode === mode)
      .map((c) => c.name)
      .join(",") || NONE;
  return formatRecord([
    ["agent", g.agent],
    ["read", of("read")],
    ["inject", of("inject")],
    ["user credentials", g.user_credentials.join(",") || NONE],
    ["may call", g.may_call.join(",") || NONE],
  ]);
}

const set: Command = {
  usage: "set AGENT [--read a,b] [--inject c] [--user-credentials x,y] [--may-call agent,...] | --clear",
  args: ["AGENT"],
  options: {
    read: { type: "string" },
    inject: { type: "string" },
    "user-credentials": { type: "string" },
    "may-call": { type: "string" },
    clear: { type: "boolean" },
  },
  async run(ctx) {
    const flags = ["read", "inject", "user-credentials", "may-call"];
    const given = flags.filter((f) => ctx.values[f] !== undefined);
    if (ctx.values.clear && given.length > 0) throw new UsageError("--clear cannot be combined with other flags");
    // Replace semantics: forgetting every flag would silently remove every grant.
    if (!ctx.values.clear && given.length === 0) {
      throw new UsageError(
        "pass --read, --inject, --user-credentials or --may-call (or --clear to remove every grant)",
      );
    }
    const list = (flag: string) => parseList(stringFlag(ctx.values, flag) ?? "");
    const read = list("read");
    const inject = list("inject");
    const both = read.find((n) => inject.includes(n));
    if (both) throw new UsageError(`${both} is in both --read and --inject`);
    const body = {
      credentials: [
        ...read.map((name) => ({ name, mode: "read" })),
        ...inject.map((name) => ({ name, mode: "inject" })),
      ],
      user_credentials: list("user-credentials"),
      may_call: list("may-call"),
    };
    const grants = await ctx
      .client()
      .request<GrantsView>("PUT", `/agents/${segment(ctx.positionals[0]!)}/grants`, body);
    ctx.print(grants, () => grantsRecord(grants));
  },
};

const get: Command = {
  usage: "get AGENT",
  args: ["AGENT"],
  options: {},
  async run(ctx) {
    const grants = await ctx.client().request<GrantsView>("GET", `/agents/${segment(ctx.positionals[0]!)}/grants`);
    ctx.print(grants, () => grantsRecord(grants));
  },
};

export const grants: Group = {
  name: "grants",
  summary: "which credentials an agent may read or inject, and which agents it may call",
  commands: { set, get },
  flags: [
    ["--read", "credentials the agent's SDK may fetch the value of"],
    ["--inject", "credentials used only through /egress, their value never revealed"],
    ["--user-credentials", "per-user credentials its tools may fetch (POST /v1/tools/credentials)"],
    ["--may-call", "the agents it may delegate to (token exchange)"],
  ],
  notes: "set replaces every grant of the agent with what the flags say (lists are comma-separated).",
};
