import { CREDENTIAL_NAME_HINT, isCredentialName } from "../../credentials/credential-rules.js";
import { isUserId, USER_ID_HINT } from "../../users/user-rules.js";
import type {
  UserCredential as Listed,
  UserListed,
  UserCredentialWritten as Written,
} from "../../users/users-schemas.js";
import { firstPositional, GLOBAL_OPTIONS, type Options, stringFlag, UsageError } from "../args.js";
import { type Command, type Context, fetchList, type Group, LIST_OPTIONS, segment, wantsHelp } from "../command.js";
import { formatTable, shortTime, truncate } from "../table.js";

/**
 * Checked here, not only by the server: fetch resolves a `.` or `..` segment before sending, so
 * `users credentials set .. x` would otherwise write the shared credential `x`.
 */
function credentialsPath(user: string, name?: string): string {
  if (!isUserId(user)) throw new UsageError(`USER ${JSON.stringify(user)}: ${USER_ID_HINT}`);
  if (name !== undefined && !isCredentialName(name)) {
    throw new UsageError(`NAME ${JSON.stringify(name)}: ${CREDENTIAL_NAME_HINT}`);
  }
  return `/users/${segment(user)}/credentials${name === undefined ? "" : `/${segment(name)}`}`;
}

/** `--value-stdin` or `--value V`; one trailing newline of piped input is dropped. */
async function valueFrom(ctx: Context): Promise<string> {
  const direct = stringFlag(ctx.values, "value");
  const fromStdin = ctx.values["value-stdin"] === true;
  if (direct !== undefined && fromStdin) throw new UsageError("--value and --value-stdin cannot be combined");
  if (fromStdin) {
    const text = (await ctx.readStdin()).replace(/\r?\n$/, "");
    if (text === "") throw new UsageError("--value-stdin: stdin was empty");
    return text;
  }
  if (direct !== undefined) {
    ctx.note("warning: --value leaves the secret in your shell history and the process list; prefer --value-stdin");
    return direct;
  }
  throw new UsageError("pass --value-stdin (or --value)");
}

const set: Command = {
  usage: "credentials set USER NAME (--value-stdin | --value V)",
  args: ["USER", "NAME"],
  options: { value: { type: "string" }, "value-stdin": { type: "boolean" } },
  async run(ctx) {
    const [user, name] = ctx.positionals as [string, string];
    const path = credentialsPath(user, name);
    const value = await valueFrom(ctx);
    const w = await ctx.client().request<Written>("PUT", path, { value });
    ctx.print(w, () => `set ${w.name} for user ${w.user}: version ${w.version}\n`);
  },
};

const list: Command = {
  usage: "credentials list USER [--limit N] [--cursor C]",
  args: ["USER"],
  options: LIST_OPTIONS,
  async run(ctx) {
    const page = await fetchList<Listed>(ctx, credentialsPath(ctx.positionals[0]!));
    ctx.print(page, () =>
      page.items.length === 0
        ? "no credentials\n"
        : formatTable(
            ["NAME", "VERSION", "UPDATED"],
            page.items.map((c) => [c.name, String(c.version), shortTime(c.updated_at)]),
          ),
    );
  },
};

/** `users list`: who has per-user credentials (names only; versions with --json). */
const listUsers: Command = {
  usage: "list [--credential NAME] [--limit N] [--cursor C]",
  args: [],
  options: { ...LIST_OPTIONS, credential: { type: "string" } },
  async run(ctx) {
    const credential = stringFlag(ctx.values, "credential");
    if (credential !== undefined && !isCredentialName(credential)) {
      throw new UsageError(`--credential ${JSON.stringify(credential)}: ${CREDENTIAL_NAME_HINT}`);
    }
    const page = await fetchList<UserListed>(ctx, "/users", { credential });
    ctx.print(page, () =>
      page.items.length === 0
        ? "no users with credentials\n"
        : formatTable(
            ["USER", "CREDENTIALS", "UPDATED"],
            page.items.map((u) => [
              u.user,
              truncate(u.credentials.map((c) => c.name).join(","), 60),
              shortTime(latest(u.credentials)),
            ]),
          ),
    );
  },
};

/** The most recent `updated_at` (ISO strings in UTC sort as text). */
const latest = (credentials: readonly Listed[]): string | null =>
  credentials.reduce<string | null>((max, c) => (max === null || c.updated_at > max ? c.updated_at : max), null);

const remove: Command = {
  usage: "credentials rm USER NAME",
  args: ["USER", "NAME"],
  options: {},
  async run(ctx) {
    const [user, name] = ctx.positionals as [string, string];
    await ctx.client().request<undefined>("DELETE", credentialsPath(user, name));
    if (!ctx.values.json) ctx.print(undefined, () => `deleted credential ${name} of user ${user}\n`);
  },
};

/**
 * `keyward users list` and `keyward users credentials <command>`. The group dispatches on one
 * word, so the credential commands are keyed by both words and `usersArgv` joins them.
 */
export const users: Group = {
  name: "users",
  summary: "per-user tool credentials (write-only)",
  commands: {
    list: listUsers,
    "credentials set": set,
    "credentials list": list,
    "credentials rm": remove,
    "credentials delete": { ...remove, usage: "credentials delete USER NAME" },
  },
  flags: [
    ["USER", "the user id (the part after user: in a key's owner), e.g. alice@example.com"],
    [
      "--value-stdin",
      "read the value from stdin (one trailing newline is dropped): it stays out of shell history and ps, unlike --value",
    ],
    ["--credential NAME", "only users who have set that credential name"],
  ],
  notes: "Values are never shown: lists give names and versions only.",
};

/** Every flag of the group, so a flag's value is never taken for a command word. */
const ALL_OPTIONS: Options = Object.assign({}, GLOBAL_OPTIONS, ...Object.values(users.commands).map((c) => c.options));

/**
 * The arguments after `keyward users`, with `credentials <command>` joined into the one word the
 * group is keyed by (help passes through).
 */
export function usersArgv(argv: string[]): string[] {
  if (wantsHelp(argv)) return argv;
  const at = firstPositional(argv, ALL_OPTIONS);
  if (at === -1 || argv[at] !== "credentials") return argv;
  const rest = [...argv.slice(0, at), ...argv.slice(at + 1)];
  const sub = firstPositional(rest, ALL_OPTIONS);
  if (sub === -1) throw new UsageError("missing command for 'keyward users credentials'");
  return [...rest.slice(0, sub), `credentials ${rest[sub]}`, ...rest.slice(sub + 1)];
}
