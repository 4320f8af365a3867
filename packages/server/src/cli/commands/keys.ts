import type { IssuedKey, Key, RotatedKey } from "../../keys/keys-schemas.js";
import {
  type Options,
  parseList,
  parseNonNegativeInt,
  parsePositiveInt,
  parseQuota,
  parseRateLimit,
  requiredFlag,
  stringFlag,
  UsageError,
  type Values,
} from "../args.js";
import { type Command, type Context, fetchList, type Group, LIST_OPTIONS, segment } from "../command.js";
import { formatRecord, formatTable, NONE, orNone, shortTime, truncate } from "../table.js";

export type { Key };

/** A new key with its secret; a rotation also answers the key it replaced. */
type Issued = IssuedKey & { previous?: RotatedKey["previous"] };

export function rateLimitText(rl: Key["rate_limit"]): string {
  return rl ? `${rl.limit}/${rl.window_s}s` : NONE;
}

export function quotaText(q: Key["quota"]): string {
  return q ? `${q.limit}/${q.period}` : NONE;
}

export function keyRecord(key: Key): string {
  return formatRecord([
    ["id", key.id],
    ["prefix", key.prefix],
    ["owner", key.owner],
    ["name", orNone(key.name)],
    ["scopes", key.scopes.join(",") || NONE],
    ["status", key.status],
    ["expires", shortTime(key.expires_at)],
    ["rate limit", rateLimitText(key.rate_limit)],
    ["quota", quotaText(key.quota)],
    ["ip allow", key.ip_allow?.join(",") || NONE],
    ["created", shortTime(key.created_at)],
    ["updated", shortTime(key.updated_at)],
    ["revoked", shortTime(key.revoked_at)],
    ["last used", shortTime(key.last_used_at)],
    ...(key.rotated_to ? ([["rotated to", key.rotated_to]] as const) : []),
  ]);
}

export function keyTable(keys: readonly Key[]): string {
  if (keys.length === 0) return "no keys\n";
  return formatTable(
    ["ID", "PREFIX", "OWNER", "NAME", "SCOPES", "STATUS", "EXPIRES", "LAST USED"],
    keys.map((k) => [
      k.id,
      k.prefix,
      k.owner,
      orNone(k.name),
      truncate(k.scopes.join(",") || NONE, 40),
      k.status,
      shortTime(k.expires_at),
      shortTime(k.last_used_at),
    ]),
  );
}

/** The secret is the one thing a person must not miss: its own labelled line, after the details. */
function issuedText(issued: Issued): string {
  let text = keyRecord(issued.key);
  if (issued.previous) {
    const { id, prefix, expires_at } = issued.previous;
    const fate = expires_at ? `keeps working until ${shortTime(expires_at)} UTC` : "has stopped working";
    text += `\nprevious key ${id} (${prefix}) ${fate}\n`;
  }
  return `${text}\nsecret (shown once): ${issued.secret}\nstore it now: Keyward keeps only a hash and cannot show it again\n`;
}

const FIELD_OPTIONS = {
  name: { type: "string" },
  scopes: { type: "string" },
  "expires-in": { type: "string" },
  "expires-at": { type: "string" },
  "rate-limit": { type: "string" },
  quota: { type: "string" },
  "ip-allow": { type: "string" },
} as const satisfies Options;

const CLEAR_OPTIONS = {
  "no-expiry": { type: "boolean" },
  "no-rate-limit": { type: "boolean" },
  "no-quota": { type: "boolean" },
  "no-ip-allow": { type: "boolean" },
} as const satisfies Options;

const OWNER = /^(consumer|agent|user):\S+$/;

/**
 * The request fields shared by create and update, from the flags. Only cheap, unambiguous checks
 * happen here (formats, conflicting flags); whether a scope or CIDR is acceptable is the server's call.
 */
export function keyFields(values: Values): Record<string, unknown> {
  const body: Record<string, unknown> = {};
  const flag = (name: string) => stringFlag(values, name);
  const clash = (a: string, b: string) => {
    if (values[a] !== undefined && values[b] !== undefined)
      throw new UsageError(`--${a} and --${b} cannot be combined`);
  };
  clash("expires-in", "expires-at");
  clash("expires-in", "no-expiry");
  clash("expires-at", "no-expiry");
  clash("rate-limit", "no-rate-limit");
  clash("quota", "no-quota");
  clash("ip-allow", "no-ip-allow");

  const name = flag("name");
  if (name !== undefined) body.name = name;
  const scopes = flag("scopes");
  if (scopes !== undefined) {
    body.scopes = parseList(scopes);
    if ((body.scopes as string[]).length === 0) throw new UsageError("--scopes needs at least one scope");
  }
  const expiresIn = flag("expires-in");
  if (expiresIn !== undefined) body.expires_in = parsePositiveInt(expiresIn, "expires-in");
  const expiresAt = flag("expires-at");
  if (expiresAt !== undefined) body.expires_at = expiresAt;
  if (values["no-expiry"]) body.expires_at = null;
  const rateLimit = flag("rate-limit");
  if (rateLimit !== undefined) body.rate_limit = parseRateLimit(rateLimit);
  if (values["no-rate-limit"]) body.rate_limit = null;
  const quota = flag("quota");
  if (quota !== undefined) body.quota = parseQuota(quota);
  if (values["no-quota"]) body.quota = null;
  const ipAllow = flag("ip-allow");
  if (ipAllow !== undefined) {
    body.ip_allow = parseList(ipAllow);
    if ((body.ip_allow as string[]).length === 0)
      throw new UsageError("--ip-allow needs a CIDR (use --no-ip-allow to clear)");
  }
  if (values["no-ip-allow"]) body.ip_allow = null;
  return body;
}

const create: Command = {
  usage:
    "create --owner consumer:NAME [--scopes agent:a,agent:b] [--name N] [--expires-in SECONDS | --expires-at RFC3339] [--rate-limit 100/60s] [--quota 10000/day] [--ip-allow CIDR,...]",
  args: [],
  options: { owner: { type: "string" }, ...FIELD_OPTIONS },
  async run(ctx) {
    const owner = requiredFlag(ctx.values, "owner");
    if (!OWNER.test(owner))
      throw new UsageError(`--owner must be consumer:NAME, agent:NAME or user:ID, got '${owner}'`);
    // An agent's own key (for /v1/credentials, egress, token exchange) needs no scopes.
    const body = { owner, scopes: [], ...keyFields(ctx.values) };
    const issued = await ctx.client().request<Issued>("POST", "/keys", body);
    ctx.print(issued, () => issuedText(issued));
  },
};

const list: Command = {
  usage: "list [--owner consumer:NAME] [--limit N] [--cursor C]",
  args: [],
  options: { owner: { type: "string" }, ...LIST_OPTIONS },
  async run(ctx) {
    const page = await fetchList<Key>(ctx, "/keys", { owner: stringFlag(ctx.values, "owner") });
    ctx.print(page, () => keyTable(page.items));
  },
};

const get: Command = {
  usage: "get ID",
  args: ["ID"],
  options: {},
  async run(ctx) {
    const key = await ctx.client().request<Key>("GET", `/keys/${segment(ctx.positionals[0]!)}`);
    ctx.print(key, () => keyRecord(key));
  },
};

const update: Command = {
  usage:
    "update ID [--name N] [--scopes S,...] [--expires-in SECONDS | --expires-at RFC3339 | --no-expiry] [--rate-limit 100/60s | --no-rate-limit] [--quota 10000/day | --no-quota] [--ip-allow CIDR,... | --no-ip-allow]",
  args: ["ID"],
  options: { ...FIELD_OPTIONS, ...CLEAR_OPTIONS },
  async run(ctx) {
    const body = keyFields(ctx.values);
    if (Object.keys(body).length === 0) throw new UsageError("nothing to update: pass at least one flag");
    const key = await ctx.client().request<Key>("PATCH", `/keys/${segment(ctx.positionals[0]!)}`, body);
    ctx.print(key, () => keyRecord(key));
  },
};

/** revoke, freeze, unfreeze: a POST without a body that answers the key. */
function transition(action: "revoke" | "freeze" | "unfreeze", past: string): Command {
  return {
    usage: `${action} ID`,
    args: ["ID"],
    options: {},
    async run(ctx: Context) {
      const id = ctx.positionals[0]!;
      const key = await ctx.client().request<Key>("POST", `/keys/${segment(id)}/${action}`);
      ctx.print(key, () => `${past} key ${key.id}\n${keyRecord(key)}`);
    },
  };
}

const rotate: Command = {
  usage: "rotate ID [--grace SECONDS]",
  args: ["ID"],
  options: { grace: { type: "string" } },
  async run(ctx) {
    const grace = stringFlag(ctx.values, "grace");
    const body = grace === undefined ? {} : { grace_s: parseNonNegativeInt(grace, "grace") };
    const issued = await ctx.client().request<Issued>("POST", `/keys/${segment(ctx.positionals[0]!)}/rotate`, body);
    ctx.print(issued, () => issuedText(issued));
  },
};

export const keys: Group = {
  name: "keys",
  summary: "API keys for consumers, agents and users",
  commands: {
    create,
    list,
    get,
    update,
    revoke: transition("revoke", "revoked"),
    rotate,
    freeze: transition("freeze", "froze"),
    unfreeze: transition("unfreeze", "unfroze"),
  },
  flags: [
    ["--rate-limit LIMIT/WINDOW", "requests per window: 100/60s, 100/60 (seconds), 5/1m, 1000/h"],
    ["--quota LIMIT/PERIOD", "PERIOD is day, month or total: 10000/day"],
    ["--scopes, --ip-allow", "comma-separated; agent:NAME scopes decide which agents a key may call"],
  ],
  notes: "The secret is printed once by create and rotate (also in --json); it cannot be shown again.",
};
