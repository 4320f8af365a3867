import { existsSync } from "node:fs";
import { isAbsolute, resolve } from "node:path";
import type { McpServerConfig } from "../config.js";

/** One configured upstream, with paths resolved and the user credentials it needs listed. */
export type UpstreamSpec =
  | {
      kind: "stdio";
      name: string;
      command: string;
      args: string[];
      cwd: string;
      env: Record<string, string>;
      /** env var → user credential name. */
      envFromCredentials: Record<string, string>;
      /** Every user credential name the server needs, sorted. */
      credentials: string[];
    }
  | {
      kind: "http";
      name: string;
      url: string;
      /** header → template with `{credential_name}` placeholders. */
      headers: Record<string, string>;
      credentials: string[];
    };

/** Keyward's own environment holds KEYWARD_MASTER_KEY and the like: only these reach a child. */
const BASE_ENV = ["PATH", "HOME", "LANG", "LC_ALL", "TZ", "SYSTEMROOT", "TEMP", "TMP", "TMPDIR"] as const;

const PLACEHOLDER = /\{([^{}\s]+)\}/g;

/**
 * Resolves a configured server against the config file's folder `dir`:
 * - `command` containing a path separator and not absolute → `dir/command`; a bare name (`node`)
 *   is looked up on PATH as usual;
 * - each arg that is not absolute and names an existing file under `dir` → that absolute path
 *   (other args — flags, words — are passed as written);
 * - `cwd` relative → under `dir`; no `cwd` → `dir` itself.
 */
export function resolveUpstream(name: string, cfg: McpServerConfig, dir: string): UpstreamSpec {
  if ("url" in cfg) {
    const names = new Set<string>();
    for (const template of Object.values(cfg.headers_from_user_credentials)) {
      for (const m of template.matchAll(PLACEHOLDER)) names.add(m[1] as string);
    }
    return {
      kind: "http",
      name,
      url: cfg.url,
      headers: { ...cfg.headers_from_user_credentials },
      credentials: [...names].sort(),
    };
  }
  const command = !isAbsolute(cfg.command) && /[/\\]/.test(cfg.command) ? resolve(dir, cfg.command) : cfg.command;
  const args = cfg.args.map((a) => {
    if (a === "" || isAbsolute(a) || a.startsWith("-")) return a;
    const candidate = resolve(dir, a);
    return existsSync(candidate) ? candidate : a;
  });
  return {
    kind: "stdio",
    name,
    command,
    args,
    cwd: cfg.cwd ? resolve(dir, cfg.cwd) : dir,
    env: { ...cfg.env },
    envFromCredentials: { ...cfg.env_from_user_credentials },
    credentials: [...new Set(Object.values(cfg.env_from_user_credentials))].sort(),
  };
}

/** The child's environment: a minimal base, the server's fixed env, then the user's credentials. */
export function childEnv(
  spec: Extract<UpstreamSpec, { kind: "stdio" }>,
  values: Readonly<Record<string, string>>,
  parentEnv: NodeJS.ProcessEnv = process.env,
): Record<string, string> {
  const env: Record<string, string> = {};
  for (const k of BASE_ENV) {
    const v = parentEnv[k];
    if (v !== undefined) env[k] = v;
  }
  Object.assign(env, spec.env);
  for (const [envName, credential] of Object.entries(spec.envFromCredentials)) {
    // Own properties only: a credential named `constructor` must not find Object's.
    if (Object.hasOwn(values, credential)) env[envName] = values[credential] as string;
  }
  return env;
}

/**
 * The headers for an HTTP upstream. A template whose credentials the user has not set is left
 * out (a `tools/call` checks for them first and never gets here without them).
 */
export function upstreamHeaders(
  spec: Extract<UpstreamSpec, { kind: "http" }>,
  values: Readonly<Record<string, string>>,
): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const [header, template] of Object.entries(spec.headers)) {
    let complete = true;
    const value = template.replace(PLACEHOLDER, (_m, name: string) => {
      if (!Object.hasOwn(values, name)) {
        complete = false;
        return "";
      }
      return values[name] as string;
    });
    if (!complete) continue;
    // Checked here so fetch never builds an error message around the value.
    if (/[\r\n\0]/.test(value)) throw new Error(`a credential used in header ${header} cannot be sent in a header`);
    headers[header] = value;
  }
  return headers;
}
