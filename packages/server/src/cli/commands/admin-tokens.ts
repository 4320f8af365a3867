import type { AdminTokenView } from "../../admin/admin-schemas.js";
import { requiredFlag } from "../args.js";
import { type Command, type Group, listCommand, segment } from "../command.js";
import { formatRecord, formatTable, NONE, shortTime } from "../table.js";

export function adminTokenRecord(t: AdminTokenView): string {
  return formatRecord([
    ["id", t.id],
    ["name", t.name],
    ["role", t.role],
    ["status", t.status],
    ["created", shortTime(t.created_at)],
    ["revoked", t.revoked_at ? shortTime(t.revoked_at) : NONE],
  ]);
}

export function adminTokenTable(tokens: readonly AdminTokenView[]): string {
  if (tokens.length === 0) return "no admin tokens\n";
  return formatTable(
    ["ID", "NAME", "ROLE", "STATUS", "CREATED"],
    tokens.map((t) => [t.id, t.name, t.role, t.status, shortTime(t.created_at)]),
  );
}

const create: Command = {
  usage: "create NAME --role owner|operator|viewer|auditor",
  args: ["NAME"],
  options: { role: { type: "string" } },
  async run(ctx) {
    const body = { name: ctx.positionals[0], role: requiredFlag(ctx.values, "role") };
    const made = await ctx
      .client()
      .request<{ admin_token: AdminTokenView; secret: string }>("POST", "/admin-tokens", body);
    ctx.print(
      made,
      () =>
        `${adminTokenRecord(made.admin_token)}\nsecret (shown once): ${made.secret}\nstore it now: Keyward keeps only a hash and cannot show it again\n`,
    );
  },
};

const list = listCommand<AdminTokenView>("/admin-tokens", adminTokenTable);

const revoke: Command = {
  usage: "revoke ID",
  args: ["ID"],
  options: {},
  async run(ctx) {
    const path = `/admin-tokens/${segment(ctx.positionals[0]!)}/revoke`;
    const token = await ctx.client().request<AdminTokenView>("POST", path);
    ctx.print(token, () => `revoked admin token ${token.id} (${token.name}); its console sessions are ended\n`);
  },
};

export const adminTokens: Group = {
  name: "admin-tokens",
  summary: "named admin tokens and their roles (owners only)",
  commands: { create, list, revoke },
  flags: [
    [
      "--role ROLE",
      "owner (everything), operator (no admin tokens or master/signing keys), viewer (read only), auditor (audit log and usage)",
    ],
  ],
  notes:
    "The secret is printed once by create (also in --json); it cannot be shown again.\nThe last active owner cannot be revoked.",
};
