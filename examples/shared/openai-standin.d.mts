// Types for openai-standin.mjs (plain JavaScript, so the examples run with node alone).

export interface OpenAIStandin {
  /** `http://127.0.0.1:PORT` */
  url: string;
  /** `url` + `/v1`: what an OpenAI client takes as its base URL. */
  baseURL: string;
  /** Replaces the keys it accepts. */
  accept(keys: string[]): void;
  close(): Promise<void>;
}

export function newStandinKey(): string;

export function startOpenAIStandin(opts: {
  keys: string[];
  port?: number;
  host?: string;
  onRequest?: (request: { method: string | undefined; path: string; keyAccepted: boolean }) => void;
}): Promise<OpenAIStandin>;
