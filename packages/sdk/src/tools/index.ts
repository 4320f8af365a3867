export {
  type LangChainToolConfig,
  langchainToolFunc,
  type McpCallToolResult,
  type McpRequestExtra,
  mcpToolHandler,
  type ToolCall,
} from "./adapters.js";
export { AuditError, type AuditEvent, ToolTimeoutError, UserCredentialError } from "./errors.js";
export type { RunFunction, RunOptions, RunResult } from "./run.js";
export type { KeywardTools } from "./tools.js";
export type {
  EnvOptions,
  EnvToolContext,
  HeadersOptions,
  HeadersToolContext,
  ModelArgs,
  ParamsOptions,
  ToolCallContext,
  ToolContext,
  WithUserCredentialsOptions,
  WrappedTool,
} from "./types.js";
