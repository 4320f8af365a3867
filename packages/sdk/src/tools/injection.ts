/**
 * Where a wrapped tool receives its user's credentials (SPEC §7): in its arguments, in an
 * environment for child processes, or in HTTP headers. Options are checked once, when the tool is
 * wrapped, so a typo fails at start-up with the option's name rather than on a user's first call.
 */

export type InjectMode = "env" | "params" | "headers";

/** A validated plan: how one call's values become the tool's arguments or context. */
export interface InjectionPlan {
  mode: InjectMode;
  names: readonly string[];
  /** env: variable → credential name. */
  env: [string, string][];
  /** env: what the environment starts from (default: the few variables of MINIMAL_ENV from `process.env`). */
  baseEnv: Readonly<Record<string, string | undefined>> | undefined;
  /** headers: header → template parts (strings and `{name}` references). */
  headers: [string, (string | { name: string })[]][];
}

/** Fields the model may plant in arguments to steer whose credentials a tool uses: never passed on. */
const PLANTED = ["credentials", "user", "user_id"] as const;

/** `aliyun-ak.v2` → `ALIYUN_AK_V2`. */
export function defaultEnvVar(name: string): string {
  return name.toUpperCase().replace(/[^A-Z0-9]/g, "_");
}

const ENV_VAR = /^[A-Za-z_][A-Za-z0-9_]*$/;
// RFC 9110 token characters.
const HEADER = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

function fail(msg: string): never {
  throw new TypeError(`withUserCredentials: ${msg}`);
}

export function planInjection(o: {
  names: unknown;
  inject: unknown;
  env?: Record<string, string> | undefined;
  baseEnv?: Readonly<Record<string, string | undefined>> | undefined;
  headers?: Record<string, string> | undefined;
}): InjectionPlan {
  const { names, inject } = o;
  if (!Array.isArray(names) || names.length === 0 || !names.every((n) => typeof n === "string" && n !== "")) {
    fail("names must be a non-empty list of credential names");
  }
  if (new Set(names).size !== names.length) fail("names lists a credential twice");
  if (inject !== "env" && inject !== "params" && inject !== "headers")
    fail('inject must be "env", "params" or "headers"');
  const known = (n: string, where: string) => {
    if (!names.includes(n)) fail(`${where} refers to "${n}", which is not in names`);
  };
  if (o.env !== undefined && inject !== "env") fail('the env option needs inject: "env"');
  if (o.baseEnv !== undefined && inject !== "env") fail('the baseEnv option needs inject: "env"');
  if (o.baseEnv !== undefined && (typeof o.baseEnv !== "object" || o.baseEnv === null))
    fail("baseEnv must be an object");
  if (o.headers !== undefined && inject !== "headers") fail('the headers option needs inject: "headers"');

  const env: [string, string][] = [];
  if (inject === "env") {
    const mapped = new Set<string>();
    for (const [v, n] of Object.entries(o.env ?? {})) {
      if (!ENV_VAR.test(v)) fail(`"${v}" is not an environment variable name`);
      known(n, `env.${v}`);
      env.push([v, n]);
      mapped.add(n);
    }
    // A name the mapping does not mention still reaches the tool, under its default variable.
    for (const n of names as string[]) if (!mapped.has(n)) env.push([defaultEnvVar(n), n]);
    const vars = env.map(([v]) => v);
    if (new Set(vars).size !== vars.length) fail("two credentials map to the same environment variable");
  }

  const headers: InjectionPlan["headers"] = [];
  if (inject === "headers") {
    let spec = o.headers;
    if (spec === undefined) {
      if (names.length !== 1) fail("with several names, the headers option must say where each one goes");
      spec = { Authorization: `Bearer {${names[0]}}` };
    }
    for (const [h, template] of Object.entries(spec)) {
      if (!HEADER.test(h)) fail(`"${h}" is not a header name`);
      if (typeof template !== "string") fail(`headers.${h} must be a template string`);
      headers.push([h, parseTemplate(template, (n) => known(n, `headers.${h}`))]);
    }
  }
  return { mode: inject, names: [...(names as string[])], env, baseEnv: o.baseEnv, headers };
}

function parseTemplate(template: string, check: (name: string) => void): (string | { name: string })[] {
  const parts: (string | { name: string })[] = [];
  let at = 0;
  for (const m of template.matchAll(/\{([^{}]+)\}/g)) {
    if (m.index > at) parts.push(template.slice(at, m.index));
    check(m[1] as string);
    parts.push({ name: m[1] as string });
    at = m.index + m[0].length;
  }
  if (at < template.length) parts.push(template.slice(at));
  return parts;
}

/**
 * `params`: the tool's arguments with the values under `credentials`. Planted `credentials`,
 * `user` and `user_id` fields are removed before the values go in, so the model can neither
 * replace a value nor name another user.
 */
export function injectParams(args: unknown, values: ReadonlyMap<string, string>): Record<string, unknown> {
  if (args !== undefined && args !== null && (typeof args !== "object" || Array.isArray(args))) {
    throw new TypeError('withUserCredentials: inject "params" needs object arguments');
  }
  const out: Record<string, unknown> = { ...(args as Record<string, unknown> | null | undefined) };
  for (const k of PLANTED) delete out[k];
  out.credentials = Object.fromEntries(values);
  return out;
}

/**
 * What a child needs to run at all, and nothing that could be a secret: the agent's own
 * environment may hold its Keyward key or model keys, which a tool's child has no use for.
 */
const MINIMAL_ENV = ["PATH", "HOME", "LANG", "LC_ALL", "TZ", "TMPDIR", "SYSTEMROOT", "TEMP", "TMP"];

function minimalEnv(): Record<string, string | undefined> {
  const env: Record<string, string | undefined> = {};
  for (const k of MINIMAL_ENV) env[k] = process.env[k];
  return env;
}

/** `env`: a fresh environment (`baseEnv`, else the minimal one) plus the values; nothing is ever written. */
export function injectEnv(plan: InjectionPlan, values: ReadonlyMap<string, string>): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(plan.baseEnv ?? minimalEnv())) if (v !== undefined) env[k] = v;
  for (const [v, n] of plan.env) env[v] = values.get(n) as string;
  return env;
}

/** `headers`: each template filled in. A value that would end the header line is refused. */
export function injectHeaders(plan: InjectionPlan, values: ReadonlyMap<string, string>): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const [h, parts] of plan.headers) {
    let line = "";
    for (const p of parts) {
      if (typeof p === "string") line += p;
      else {
        const value = values.get(p.name) as string;
        if (/[\r\n\0]/.test(value)) {
          throw new TypeError(
            `withUserCredentials: credential "${p.name}" holds a line break and cannot go in a header`,
          );
        }
        line += value;
      }
    }
    headers[h] = line;
  }
  return headers;
}
