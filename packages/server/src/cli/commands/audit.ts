import type { AuditEvent, AuditPage } from "../../audit/audit-schemas.js";
import { parsePositiveInt, stringFlag } from "../args.js";
import type { Command, Group } from "../command.js";
import { formatTable, NONE, orNone, shortTime, truncate } from "../table.js";

export function auditTable(events: readonly AuditEvent[]): string {
  if (events.length === 0) return "no audit events\n";
  return formatTable(
    ["SEQ", "TIME", "ACTOR", "ACTION", "TARGET", "OUTCOME", "CODE", "IP"],
    events.map((e) => [
      String(e.seq),
      shortTime(e.time),
      truncate(e.actor, 30),
      e.action,
      truncate(orNone(e.target), 30),
      e.outcome,
      orNone(e.code),
      orNone(e.ip),
    ]),
  );
}

const list: Command = {
  usage: "list [--action A] [--principal P] [--since T] [--until T] [--limit N] [--cursor C]",
  args: [],
  options: {
    action: { type: "string" },
    principal: { type: "string" },
    since: { type: "string" },
    until: { type: "string" },
    limit: { type: "string" },
    cursor: { type: "string" },
  },
  async run(ctx) {
    const limitRaw = stringFlag(ctx.values, "limit");
    const query = {
      action: stringFlag(ctx.values, "action"),
      principal: stringFlag(ctx.values, "principal"),
      since: stringFlag(ctx.values, "since"),
      until: stringFlag(ctx.values, "until"),
      cursor: stringFlag(ctx.values, "cursor"),
      limit: limitRaw === undefined ? 50 : parsePositiveInt(limitRaw, "limit"),
    };
    const page = await ctx.client().request<AuditPage>("GET", "/audit", undefined, query);
    if (page.next_cursor && !ctx.values.json) ctx.note(`more results: add --cursor ${page.next_cursor}`);
    ctx.print(page, () => auditTable(page.events));
  },
};

const verify: Command = {
  usage: "verify",
  args: [],
  options: {},
  async run(ctx) {
    const r = await ctx
      .client()
      .request<{ ok: boolean; count: number; head?: string; first_broken_seq?: number }>("GET", "/audit/verify");
    ctx.print(r, () =>
      r.ok
        ? `chain intact: ${r.count} events, head ${r.head ?? NONE}\n`
        : `CHAIN BROKEN at seq ${r.first_broken_seq} (${r.count} events verified before it)\n`,
    );
  },
};

export const audit: Group = {
  name: "audit",
  summary: "the hash-chained audit log",
  commands: { list, verify },
  flags: [
    ["--since T, --until T", "RFC 3339 or epoch ms"],
    ["--principal P", "matches actor or target"],
    ["--action A", "only records of that action"],
  ],
  notes: "Newest first.",
};
