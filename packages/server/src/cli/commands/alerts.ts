import type { AlertPage, AlertView } from "../../anomaly/alerts-schemas.js";
import { firstPositional, GLOBAL_OPTIONS, parsePositiveInt, stringFlag } from "../args.js";
import { type Command, type Group, segment, wantsHelp } from "../command.js";
import { formatRecord, formatTable, NONE, orNone, shortTime, truncate } from "../table.js";

/**
 * The evidence as `name=value` pairs, scalars only and in the server's order: enough to tell one
 * incident from another on one line; `--json` has the whole record.
 */
export function evidenceLine(evidence: AlertView["evidence"]): string {
  const pairs = Object.entries(evidence)
    .filter(([, v]) => typeof v === "string" || typeof v === "number" || typeof v === "boolean")
    .map(([k, v]) => `${k}=${String(v)}`);
  return pairs.length === 0 ? NONE : pairs.join(" ");
}

export function alertsTable(alerts: readonly AlertView[]): string {
  if (alerts.length === 0) return "no alerts\n";
  return formatTable(
    ["ID", "TIME", "SEVERITY", "STATUS", "RULE", "KEY", "EVIDENCE"],
    alerts.map((a) => [
      a.id,
      shortTime(a.created_at),
      a.severity,
      a.status,
      a.rule,
      orNone(a.key_id),
      truncate(evidenceLine(a.evidence), 80),
    ]),
  );
}

export function alertRecord(a: AlertView): string {
  return formatRecord([
    ["id", a.id],
    ["time", shortTime(a.created_at)],
    ["severity", a.severity],
    ["status", a.status],
    ["rule", a.rule],
    ["key", orNone(a.key_id)],
    ["evidence", evidenceLine(a.evidence)],
  ]);
}

const list: Command = {
  usage: "list [--status open|acked] [--severity S] [--key KEY_ID] [--limit N] [--cursor C]",
  args: [],
  options: {
    status: { type: "string" },
    severity: { type: "string" },
    key: { type: "string" },
    limit: { type: "string" },
    cursor: { type: "string" },
  },
  async run(ctx) {
    const limitRaw = stringFlag(ctx.values, "limit");
    // The server checks status and severity (400 naming the filter), so the CLI cannot drift from it.
    const query = {
      status: stringFlag(ctx.values, "status"),
      severity: stringFlag(ctx.values, "severity"),
      key_id: stringFlag(ctx.values, "key"),
      cursor: stringFlag(ctx.values, "cursor"),
      limit: limitRaw === undefined ? 50 : parsePositiveInt(limitRaw, "limit"),
    };
    const page = await ctx.client().request<AlertPage>("GET", "/alerts", undefined, query);
    if (page.next_cursor && !ctx.values.json) ctx.note(`more results: add --cursor ${page.next_cursor}`);
    ctx.print(page, () => alertsTable(page.items));
  },
};

const ack: Command = {
  usage: "ack ALERT_ID",
  args: ["alert-id"],
  options: {},
  async run(ctx) {
    const id = ctx.positionals[0] as string;
    const alert = await ctx.client().request<AlertView>("POST", `/alerts/${segment(id)}/ack`);
    ctx.print(alert, () => alertRecord(alert));
  },
};

export const alerts: Group = {
  name: "alerts",
  summary: "anomaly alerts, newest first; acknowledge one",
  commands: { list, ack },
  flags: [
    ["--status S", "open or acked"],
    ["--severity S", "info, warning or critical"],
    ["--key KEY_ID", "only alerts about that key"],
    ["--limit N", "alerts per page (default 50, at most 1000)"],
  ],
  notes: [
    "`keyward alerts [flags]` is short for `keyward alerts list [flags]`.",
    "Acknowledging is recorded in the audit log; it unfreezes nothing (keyward keys unfreeze).",
  ].join("\n"),
};

const ALL_OPTIONS = { ...GLOBAL_OPTIONS, ...list.options, ...ack.options };

/** `keyward alerts [flags]` → `keyward alerts list [flags]`: listing is what the bare word asks for. */
export function alertsArgv(argv: string[]): string[] {
  if (wantsHelp(argv) || firstPositional(argv, ALL_OPTIONS) !== -1) return argv;
  return ["list", ...argv];
}
