import { type AdminClient, createAdminClient, type Page, type Query } from "./admin-client.js";
import {
  expectPositionals,
  firstPositional,
  GLOBAL_OPTIONS,
  type Options,
  parseFlags,
  parsePositiveInt,
  stringFlag,
  UsageError,
  type Values,
} from "./args.js";
import { columns, HELP_WIDTH, synopsis, wrap } from "./help.js";

/** Where the CLI writes and what it reads: process streams in the bin, collectors in tests. */
export interface CliIo {
  stdout: { write(chunk: string): unknown };
  stderr: { write(chunk: string): unknown };
  env: Record<string, string | undefined>;
  /** Secrets piped in (`--value-stdin`), so they stay out of shell history and `ps`. */
  stdin?: AsyncIterable<Buffer | string>;
}

export const DEFAULT_URL = "http://127.0.0.1:8080";

export interface Context {
  values: Values;
  positionals: string[];
  /** Built on first use, so a bad flag is reported before a missing token. */
  client(): AdminClient;
  /** `--json`: the response as the server sent it; otherwise the text from `human`. */
  print(response: unknown, human: () => string): void;
  /** Notes for people (e.g. "more results"); stderr, so stdout stays clean for pipes. */
  note(text: string): void;
  /** Everything on stdin, as UTF-8. */
  readStdin(): Promise<string>;
}

export interface Command {
  /** The synopsis after `keyward <group> `, e.g. "get NAME". */
  usage: string;
  /** Names of the positional arguments, in order. */
  args: readonly string[];
  options: Options;
  run(ctx: Context): Promise<void>;
}

export interface Group {
  name: string;
  summary: string;
  commands: Record<string, Command>;
  /** Flags worth a word under the synopses: [flag, what it takes or does], shown as aligned columns. */
  flags?: readonly (readonly [string, string])[];
  /** Prose under the flags. */
  notes?: string;
}

export function groupUsage(group: Group): string {
  const synopses = Object.entries(group.commands).flatMap(([name, c]) => {
    // The command's own words stay in the head, so wrapped arguments line up after them.
    const own = c.usage === name || c.usage.startsWith(`${name} `);
    return own
      ? synopsis(`keyward ${group.name} ${name}`, c.usage.slice(name.length + 1))
      : synopsis(`keyward ${group.name}`, c.usage);
  });
  return [
    `usage: keyward ${group.name} <command> [flags]`,
    ...wrap(group.summary, HELP_WIDTH),
    "",
    ...synopses,
    ...(group.flags ? ["", ...columns(group.flags)] : []),
    ...(group.notes ? ["", ...group.notes.trimEnd().split("\n")] : []),
    "",
    "global flags: --url URL, --token TOKEN, --json, -h/--help (see 'keyward --help')",
    "",
  ].join("\n");
}

/** True when -h/--help appears as a flag, i.e. before any `--`. */
export function wantsHelp(argv: readonly string[]): boolean {
  const end = argv.indexOf("--");
  const flags = end === -1 ? argv : argv.slice(0, end);
  return flags.includes("--help") || flags.includes("-h");
}

export async function runGroup(group: Group, argv: string[], io: CliIo): Promise<void> {
  if (wantsHelp(argv)) {
    io.stdout.write(groupUsage(group));
    return;
  }
  const allOptions: Options = Object.assign({}, GLOBAL_OPTIONS, ...Object.values(group.commands).map((c) => c.options));
  const at = firstPositional(argv, allOptions);
  if (at === -1) throw new UsageError(`missing command for 'keyward ${group.name}'`);
  const name = argv[at]!;
  const command = Object.hasOwn(group.commands, name) ? group.commands[name] : undefined;
  if (!command) throw new UsageError(`unknown command 'keyward ${group.name} ${name}'`);

  const rest = [...argv.slice(0, at), ...argv.slice(at + 1)];
  const { values, positionals } = parseFlags(rest, { ...GLOBAL_OPTIONS, ...command.options });
  expectPositionals(positionals, command.args);

  let client: AdminClient | undefined;
  await command.run({
    values,
    positionals,
    client: () => {
      client ??= connect(values, io.env);
      return client;
    },
    print: (response, human) =>
      io.stdout.write(values.json ? `${JSON.stringify(response ?? null, null, 2)}\n` : human()),
    note: (text) => io.stderr.write(`${text}\n`),
    readStdin: async () => {
      if (!io.stdin) throw new UsageError("no stdin to read from");
      const chunks: Buffer[] = [];
      for await (const chunk of io.stdin) chunks.push(typeof chunk === "string" ? Buffer.from(chunk) : chunk);
      return Buffer.concat(chunks).toString("utf8");
    },
  });
}

function connect(values: Values, env: CliIo["env"]): AdminClient {
  const url = checkUrl(stringFlag(values, "url") || env.KEYWARD_URL || DEFAULT_URL);
  const token = stringFlag(values, "token") || env.KEYWARD_ADMIN_TOKEN;
  if (!token) throw new UsageError("no admin token: set KEYWARD_ADMIN_TOKEN or pass --token");
  return createAdminClient({ url, token });
}

/** Refuses URLs with user:password in them: fetch rejects them, and they would end up in messages. */
function checkUrl(raw: string): string {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new UsageError(`invalid Keyward URL '${raw}' (expected e.g. ${DEFAULT_URL})`);
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    throw new UsageError(`invalid Keyward URL '${raw}': only http and https are supported`);
  }
  if (url.username || url.password)
    throw new UsageError("invalid Keyward URL: credentials in the URL are not supported");
  return `${url.origin}${url.pathname}`.replace(/\/+$/, "");
}

/** Flags shared by every `list`: without them the CLI fetches all pages. */
export const LIST_OPTIONS = { limit: { type: "string" }, cursor: { type: "string" } } as const satisfies Options;

/**
 * One page when `--limit`/`--cursor` is given (scripts paging on their own), otherwise every page.
 * Tells people on stderr how to get the next page, since the table cannot show the cursor.
 */
export async function fetchList<T>(ctx: Context, path: string, query: Query = {}): Promise<Page<T>> {
  const limitRaw = stringFlag(ctx.values, "limit");
  const cursor = stringFlag(ctx.values, "cursor");
  if (limitRaw === undefined && cursor === undefined) return ctx.client().listAll<T>(path, query);
  const limit = limitRaw === undefined ? undefined : parsePositiveInt(limitRaw, "limit");
  const page = await ctx.client().request<Page<T>>("GET", path, undefined, { ...query, limit, cursor });
  if (page.next_cursor && !ctx.values.json) ctx.note(`more results: add --cursor ${page.next_cursor}`);
  return page;
}

/** `list [--limit N] [--cursor C]`: the collection at `path`, shown with `table`. */
export function listCommand<T>(path: string, table: (items: T[]) => string): Command {
  return {
    usage: "list [--limit N] [--cursor C]",
    args: [],
    options: LIST_OPTIONS,
    async run(ctx) {
      const page = await fetchList<T>(ctx, path);
      ctx.print(page, () => table(page.items));
    },
  };
}

/** `get NAME`: the item at `path/NAME`, shown with `record`. */
export function getCommand<T>(path: string, record: (item: T) => string): Command {
  return {
    usage: "get NAME",
    args: ["NAME"],
    options: {},
    async run(ctx) {
      const item = await ctx.client().request<T>("GET", `${path}/${segment(ctx.positionals[0]!)}`);
      ctx.print(item, () => record(item));
    },
  };
}

export function segment(value: string): string {
  return encodeURIComponent(value);
}
