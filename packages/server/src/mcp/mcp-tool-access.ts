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

/**
 * What `held` lets its holder do on `server`, or undefined when nothing: a scope covering the
 * whole server, or at least one per-tool scope of it. A per-tool token may `initialize` and list
 * (it sees its tools only); a call to any other tool is refused.
 */
export function toolAccess(server: string, held: ReadonlySet<string>): ToolAccess | undefined {
  const whole = `mcp:${server}`;
  if (covers(held, whole)) return EVERY_TOOL;
  // A held scope lies within the server when the server's scope alone would cover it.
  for (const s of held) if (covers([whole], s)) return someTools(whole, held);
  return undefined;
}

function someTools(whole: string, held: ReadonlySet<string>): ToolAccess {
  return {
    every: false,
    refusal(tool) {
      // The name becomes part of a scope and of a message: a name outside the rule is not repeated.
      if (!TOOL_NAME.test(tool)) {
        return `this credential may call only the tools its ${whole}:<tool> scopes name, and that is not a valid tool name (1 to 128 of A-Z a-z 0-9 _ - .)`;
      }
      const scope = `${whole}:${tool}`;
      return covers(held, scope) ? undefined : `the credential lacks scope ${scope} (or ${whole}) to call tool ${tool}`;
    },
  };
}
