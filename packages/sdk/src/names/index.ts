/**
 * The shapes of Keyward's names (SPEC §2–§3), in one place for everything that checks them: the
 * server's request schemas and configuration, the console's forms (which check before sending and
 * would otherwise drift from the server), and agents that build names. The server still decides;
 * a name that passes here can be refused for other reasons (it exists, it is not granted).
 *
 * @example
 * ```ts
 * import { OWNER } from "@keyward/sdk/names";
 * if (!OWNER.test(input)) throw new Error("an owner is consumer:<name>, agent:<name> or user:<id>");
 * ```
 */

const SLUG_BODY = "[a-z0-9][a-z0-9-]{0,62}";
const USER_ID_BODY = "(?!\\.+$)[A-Za-z0-9._@+-]{1,128}";

/** Agent, consumer and MCP server names: a lower-case slug of at most 63 characters. */
export const SLUG = new RegExp(`^${SLUG_BODY}$`);

/** A user id (`user:<id>`): letters, digits and `._@+-`, not only dots (no path tricks). */
export const USER_ID = new RegExp(`^${USER_ID_BODY}$`);

/** A key's owner: `consumer:<slug>`, `agent:<slug>` or `user:<id>`. */
export const OWNER = new RegExp(`^(consumer:${SLUG_BODY}|agent:${SLUG_BODY}|user:${USER_ID_BODY})$`);

/** A credential name: letters, digits and `_.-`, not only dots, never `__proto__`. */
export const CREDENTIAL_NAME = /^(?!\.+$)(?!__proto__$)[A-Za-z0-9_.-]{1,128}$/;

/** A scope: printable ASCII without spaces (scopes travel space-separated in tokens). */
export const SCOPE = /^[\x21-\x7e]{1,200}$/;
