import type { KeyUsage, UsageTop } from "../../usage/usage-schemas.js";
import { firstPositional, GLOBAL_OPTIONS, parsePositiveInt, stringFlag, UsageError } from "../args.js";
import { type Command, type Group, segment, wantsHelp } from "../command.js";
import { formatTable, NONE, shortTime, truncate } from "../table.js";

/** `denied: {code: n}` as `code n, code n`, the largest first. */
function byCode(denied: Record<string, number>): string {
  const entries = Object.entries(denied).sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1));
  return entries.length === 0 ? NONE : entries.map(([code, n]) => `${code} ${n}`).join(", ");
}

const total = (denied: Record<string, number>) => Object.values(denied).reduce((a, b) => a + b, 0);

export function usageTable(usage: KeyUsage): string {
  if (usage.items.length === 0) return "no buckets\n";
  return formatTable(
    ["TIME", "ALLOWED", "DENIED", "BY CODE"],
    usage.items.map((b) => [shortTime(b.t), String(b.allowed), String(total(b.denied)), byCode(b.denied)]),
  );
}

export function topTable(top: UsageTop): string {
  if (top.items.length === 0) return `no requests from ${shortTime(top.from)} to ${shortTime(top.to)}\n`;
  const head = top.group_by === "key" ? "KEY" : top.group_by === "agent" ? "AGENT" : "CONSUMER";
  return formatTable(
    [head, "REQUESTS", "ALLOWED", "DENIED", "BY CODE"],
    top.items.map((g) => [
      truncate(g.id, 60),
      String(g.allowed + g.denied),
      String(g.allowed),
      String(g.denied),
      byCode(g.denied_by_code),
    ]),
  );
}

const range = { from: { type: "string" }, to: { type: "string" } } as const;

const key: Command = {
  usage: "KEY_ID [--step 1m|1h|1d] [--from T] [--to T]",
  args: ["key-id"],
  options: { ...range, step: { type: "string" } },
  async run(ctx) {
    const id = ctx.positionals[0] as string;
    const query = {
      step: stringFlag(ctx.values, "step"),
      from: stringFlag(ctx.values, "from"),
      to: stringFlag(ctx.values, "to"),
    };
    const usage = await ctx.client().request<KeyUsage>("GET", `/keys/${segment(id)}/usage`, undefined, query);
    ctx.print(usage, () => usageTable(usage));
  },
};

const top: Command = {
  usage: "top [--by key|agent|consumer] [--top N] [--from T] [--to T]",
  args: [],
  options: { ...range, by: { type: "string" }, top: { type: "string" } },
  async run(ctx) {
    const n = stringFlag(ctx.values, "top");
    const query = {
      group_by: stringFlag(ctx.values, "by"),
      top: n === undefined ? undefined : parsePositiveInt(n, "top"),
      from: stringFlag(ctx.values, "from"),
      to: stringFlag(ctx.values, "to"),
    };
    const result = await ctx.client().request<UsageTop>("GET", "/usage", undefined, query);
    ctx.print(result, () => topTable(result));
  },
};

export const usage: Group = {
  name: "usage",
  summary: "requests per key: allowed, and denied by code",
  commands: { key: { ...key, usage: `key ${key.usage}` }, top },
  flags: [
    ["KEY_ID", "`keyward usage KEY_ID` is short for `keyward usage key KEY_ID`"],
    ["--step S", "bucket size: 1m, 1h (default) or 1d; at most 1440 buckets"],
    ["--from T, --to T", "RFC 3339 times, e.g. 2026-01-01T00:00:00Z (default: the last 60/24/30 buckets; top: 24 h)"],
    ["--by G", "top: group by key (default), agent or consumer (the key's owner)"],
    ["--top N", "top: how many groups (default 10, at most 1000)"],
  ],
  notes: "Counts reach the server's store every few seconds (usage.flush_interval_ms).",
};

const ALL_OPTIONS = { ...GLOBAL_OPTIONS, ...key.options, ...top.options };

/** `keyward usage KEY_ID …` → `keyward usage key KEY_ID …`: a key id is never a command name. */
export function usageArgv(argv: string[]): string[] {
  if (wantsHelp(argv)) return argv;
  const at = firstPositional(argv, ALL_OPTIONS);
  if (at === -1) throw new UsageError("missing key id or 'top' for 'keyward usage'");
  const word = argv[at] as string;
  if (Object.hasOwn(usage.commands, word)) return argv;
  return [...argv.slice(0, at), "key", ...argv.slice(at)];
}
