import { covers } from "../auth/scopes.js";

/**
 * A tool name as it may appear in a per-tool scope `mcp:<server>:<tool>` and in the messages that
 * name one: the MCP spec's (2025-11-25) tool-name rule, 1 to 128 of `A-Z a-z 0-9 _ - .`. With a
 * server name (≤ 63) the scope stays within SCOPE's 200 characters and never holds a space.
 */
export const TOOL_NAME = /^[A-Za-z0-9_.-]{1,128}$/;

/** Which of one server's tools a caller may call (SPEC §12), from its scopes. */
export interface ToolAccess {
  /** Every tool (`mcp:*` or `mcp:<server>`): nothing to filter or check per call. */
  readonly every: boolean;
  /** Undefined when the tool may be called; otherwise why not, naming the missing scope. */
  refusal(tool: string): string | undefined;
}

/** The user a `/mcp/{server}` request acts for, and the tools its credential reaches. */
export interface McpCaller {
  readonly user: string;
  readonly tools: ToolAccess;
}

export const EVERY_TOOL: ToolAccess = { every: true, refusal: () => undefined };

/** A caller with every tool: the gateway's own tests and callers that checked `mcp:<server>` already. */
export const withEveryTool = (user: string): McpCaller => ({ user, tools: EVERY_TOOL });

const memo = new WeakMap<ReadonlySet<string>, { server: string; access: ToolAccess | undefined }>();

/**
 * What `held` lets its holder do on `server`, or undefined when nothing: a scope covering the
 * whole server, or at least one per-tool scope of it. A per-tool token may `initialize` and list
 * (it sees its tools only); a call to any other tool is refused.
 *
 * Remembered per scope set (a verified token's or a key's, replaced when they change) for the
 * last server asked: the hot path works it out once per token.
 */
export function toolAccess(server: string, held: ReadonlySet<string>): ToolAccess | undefined {
  const hit = memo.get(held);
  if (hit !== undefined && hit.server === server) return hit.access;
  const access = accessOf(server, held);
  memo.set(held, { server, access });
  return access;
}

function accessOf(server: string, held: ReadonlySet<string>): ToolAccess | undefined {
  const whole = `mcp:${server}`;
  if (covers(held, whole)) return EVERY_TOOL;
  // A held scope lies within the server when the server's scope alone would cover it; not
  // holding `mcp:*` or the server's scope, the holder has exactly these tools.
  const tools = new Set<string>();
  for (const s of held) if (covers([whole], s)) tools.add(s.slice(whole.length + 1));
  return tools.size === 0 ? undefined : someTools(whole, tools);
}

function someTools(whole: string, tools: ReadonlySet<string>): ToolAccess {
  return {
    every: false,
    refusal(tool) {
      // The name becomes part of a scope and of a message: a name outside the rule is not repeated.
      if (!TOOL_NAME.test(tool)) {
        return `this credential may call only the tools its ${whole}:<tool> scopes name, and that is not a valid tool name (1 to 128 of A-Z a-z 0-9 _ - .)`;
      }
      if (tools.has(tool)) return undefined;
      return `the credential lacks scope ${whole}:${tool} (or ${whole}) to call tool ${tool}`;
    },
  };
}
