import type { CredentialDetail, Credential as CredentialView } from "../../credentials/credentials-schemas.js";
import { type Options, parsePositiveInt, requiredFlag, stringFlag, UsageError, type Values } from "../args.js";
import { type Command, type Context, type Group, getCommand, listCommand, segment } from "../command.js";
import { formatRecord, formatTable, NONE, orNone, shortTime } from "../table.js";

/** A list item has no versions; a single credential (put, get, rollback) has them. */
type Credential = CredentialView & { versions?: CredentialDetail["versions"] };

const PROVIDER = "oauth2_client_credentials";

function credentialRecord(c: Credential): string {
  let text = formatRecord([
    ["name", c.name],
    ["type", c.type],
    ["version", c.version === null ? NONE : String(c.version)],
    ["status", c.status_message ? `${c.status}: ${c.status_message}` : c.status],
    ...(c.expires_at ? ([["expires", shortTime(c.expires_at)]] as const) : []),
    ...(c.provider
      ? ([
          ["token url", c.provider.token_url],
          ["client id", c.provider.client_id],
          ["scope", orNone(c.provider.scope)],
        ] as const)
      : []),
    ["egress", c.egress ? `${c.egress.base_url} (${c.egress.header}: ${c.egress.format})` : NONE],
    ["created", shortTime(c.created_at)],
    ["updated", shortTime(c.updated_at)],
  ]);
  if (c.versions && c.versions.length > 0) {
    text += `\n${formatTable(
      ["VERSION", "SOURCE", "CREATED", "BY", "EXPIRES"],
      c.versions.map((v) => [
        String(v.version),
        v.rolled_back_from === null ? v.source : `${v.source} of v${v.rolled_back_from}`,
        shortTime(v.created_at),
        v.created_by,
        shortTime(v.expires_at),
      ]),
    )}`;
  }
  return text;
}

function credentialTable(items: readonly Credential[]): string {
  if (items.length === 0) return "no credentials\n";
  return formatTable(
    ["NAME", "TYPE", "VERSION", "STATUS", "EGRESS", "UPDATED"],
    items.map((c) => [
      c.name,
      c.type === PROVIDER ? "oauth2" : c.type,
      c.version === null ? NONE : String(c.version),
      c.status,
      c.egress?.base_url ?? NONE,
      shortTime(c.updated_at),
    ]),
  );
}

/** A value piped in usually ends with the newline `echo` or a file added: one is dropped. */
function stripNewline(text: string): string {
  return text.replace(/\r?\n$/, "");
}

/** `--NAME V` or `--NAME-stdin`: one of the two, the flag warned about because it shows in history and ps. */
async function secretFrom(ctx: Context, name: string, required: boolean): Promise<string | undefined> {
  const direct = stringFlag(ctx.values, name);
  const fromStdin = ctx.values[`${name}-stdin`] === true;
  if (direct !== undefined && fromStdin) throw new UsageError(`--${name} and --${name}-stdin cannot be combined`);
  if (fromStdin) {
    const text = stripNewline(await ctx.readStdin());
    if (text === "") throw new UsageError(`--${name}-stdin: stdin was empty`);
    return text;
  }
  if (direct !== undefined) {
    ctx.note(`warning: --${name} leaves the secret in your shell history and the process list; prefer --${name}-stdin`);
    return direct;
  }
  if (required) throw new UsageError(`pass --${name}-stdin (or --${name})`);
  return undefined;
}

function egressFields(values: Values): Record<string, unknown> {
  const base = stringFlag(values, "egress-base-url");
  const header = stringFlag(values, "egress-header");
  const format = stringFlag(values, "egress-format");
  if (values["no-egress"]) {
    if (base !== undefined || header !== undefined || format !== undefined) {
      throw new UsageError("--no-egress cannot be combined with other --egress flags");
    }
    return { egress: null };
  }
  if (base === undefined) {
    if (header !== undefined || format !== undefined)
      throw new UsageError("--egress-header/--egress-format need --egress-base-url");
    return {};
  }
  return {
    egress: {
      base_url: base,
      ...(header !== undefined ? { header } : {}),
      ...(format !== undefined ? { format } : {}),
    },
  };
}

const SET_OPTIONS = {
  value: { type: "string" },
  "value-stdin": { type: "boolean" },
  type: { type: "string" },
  "token-url": { type: "string" },
  "client-id": { type: "string" },
  "client-secret": { type: "string" },
  "client-secret-stdin": { type: "boolean" },
  scope: { type: "string" },
  "egress-base-url": { type: "string" },
  "egress-header": { type: "string" },
  "egress-format": { type: "string" },
  "no-egress": { type: "boolean" },
} as const satisfies Options;

const set: Command = {
  usage:
    "set NAME (--value-stdin | --value V | --type oauth2_client_credentials --token-url URL --client-id ID --client-secret-stdin [--scope S]) [--egress-base-url URL [--egress-header H] [--egress-format F] | --no-egress]",
  args: ["NAME"],
  options: SET_OPTIONS,
  async run(ctx) {
    const name = ctx.positionals[0]!;
    const type = stringFlag(ctx.values, "type") ?? "static";
    let body: Record<string, unknown>;
    if (type === PROVIDER) {
      if (ctx.values.value !== undefined || ctx.values["value-stdin"]) {
        throw new UsageError("a token provider fetches its value: drop --value/--value-stdin");
      }
      const clientSecret = await secretFrom(ctx, "client-secret", true);
      const scope = stringFlag(ctx.values, "scope");
      body = {
        type,
        token_url: requiredFlag(ctx.values, "token-url"),
        client_id: requiredFlag(ctx.values, "client-id"),
        client_secret: clientSecret,
        ...(scope !== undefined ? { scope } : {}),
      };
    } else if (type === "static") {
      for (const flag of ["token-url", "client-id", "client-secret", "client-secret-stdin", "scope"]) {
        if (ctx.values[flag] !== undefined) throw new UsageError(`--${flag} needs --type ${PROVIDER}`);
      }
      body = { value: await secretFrom(ctx, "value", true) };
    } else {
      throw new UsageError(`--type must be static or ${PROVIDER}, got '${type}'`);
    }
    Object.assign(body, egressFields(ctx.values));
    const credential = await ctx.client().request<Credential>("PUT", `/credentials/${segment(name)}`, body);
    ctx.print(credential, () => credentialRecord({ ...credential, versions: [] }));
  },
};

const list = listCommand<Credential>("/credentials", credentialTable);

const get = getCommand<Credential>("/credentials", credentialRecord);

const rollback: Command = {
  usage: "rollback NAME --version N",
  args: ["NAME"],
  options: { version: { type: "string" } },
  async run(ctx) {
    const version = parsePositiveInt(requiredFlag(ctx.values, "version"), "version");
    const credential = await ctx
      .client()
      .request<Credential>("POST", `/credentials/${segment(ctx.positionals[0]!)}/rollback`, { version });
    ctx.print(credential, () => `rolled back: version ${credential.version} has the value of version ${version}\n`);
  },
};

const remove: Command = {
  usage: "rm NAME",
  args: ["NAME"],
  options: {},
  async run(ctx) {
    const name = ctx.positionals[0]!;
    await ctx.client().request<undefined>("DELETE", `/credentials/${segment(name)}`);
    if (!ctx.values.json)
      ctx.print(undefined, () => `deleted credential ${name} (every version, and every grant of it)\n`);
  },
};

export const credentials: Group = {
  name: "credentials",
  summary: "outbound credentials agents read or use through egress",
  commands: { set, list, get, rollback, rm: remove, delete: { ...remove, usage: "delete NAME" } },
  flags: [
    [
      "--value-stdin",
      "read the value from stdin (one trailing newline is dropped): it stays out of shell history and ps, unlike --value",
    ],
    ["--egress-base-url URL", "where /egress/NAME/… forwards"],
    ["--egress-header H", "the header the value goes in (default Authorization)"],
    ["--egress-format F", "how it is written there (default 'Bearer {value}', or '{value}' for other headers)"],
  ],
  notes: "Values are never shown: get lists versions and metadata only.",
};
