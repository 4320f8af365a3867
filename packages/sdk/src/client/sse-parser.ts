import { ResponseTooLargeError } from "../errors.js";
import { DEFAULT_LIMITS, type ResolvedLimits } from "../http/limits.js";

/** One dispatched Server-Sent Event. */
export interface SseEvent {
  type: string;
  data: string;
  /** The stream's last event id after this event (what a reconnect sends as `Last-Event-ID`). */
  lastEventId: string;
}

export interface SseHandlers {
  event(event: SseEvent): void;
  /** A comment line (`: …`): Keyward's heartbeats. */
  comment(): void;
}

/** What one line and one event may hold; past it the stream is treated as broken. */
export type SseLimits = Pick<ResolvedLimits, "sseLineChars" | "sseEventChars" | "sseEventLines">;

/**
 * The event-stream parser of the WHATWG HTML standard (§9.2.6), fed decoded text in chunks of any
 * size: lines end in CRLF, LF or CR (a CRLF may be split across chunks), `data` lines accumulate,
 * `id` persists across events, a blank line dispatches, an event without data is not dispatched.
 *
 * Bounded: a line longer than `sseLineChars` (even one still waiting for its end), or an event
 * whose field lines add up to more than `sseEventChars` or number more than `sseEventLines`, throws
 * {@link ResponseTooLargeError} from `push`, before more than one chunk past the limit is held.
 * Comments count towards neither: nothing of them is kept.
 */
export class SseParser {
  lastEventId = "";
  #buffer = "";
  #type = "";
  #data = "";
  #hasData = false;
  #idBuffer = "";
  #skipLf = false;
  #started = false;
  /** Characters and field lines of the event being built (since the last blank line). */
  #eventChars = 0;
  #eventLines = 0;

  constructor(
    private readonly handlers: SseHandlers,
    lastEventId = "",
    private readonly limits: SseLimits = DEFAULT_LIMITS,
  ) {
    this.lastEventId = lastEventId;
    this.#idBuffer = lastEventId;
  }

  push(chunk: string): void {
    let text = chunk;
    if (!this.#started && text.length > 0) {
      this.#started = true;
      if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
    }
    if (this.#skipLf && text.startsWith("\n")) text = text.slice(1);
    this.#skipLf = false;
    let start = 0;
    for (let i = 0; i < text.length; i++) {
      const c = text.charCodeAt(i);
      if (c !== 10 && c !== 13) continue;
      this.#checkLine(this.#buffer.length + i - start);
      const line = this.#buffer + text.slice(start, i);
      this.#buffer = "";
      if (c === 13) {
        if (i + 1 === text.length) this.#skipLf = true;
        else if (text.charCodeAt(i + 1) === 10) i++;
      }
      start = i + 1;
      this.#line(line);
    }
    // Checked before appending: an endless line without a line break is refused at the limit.
    this.#checkLine(this.#buffer.length + text.length - start);
    this.#buffer += text.slice(start);
  }

  #checkLine(length: number): void {
    const { sseLineChars } = this.limits;
    if (length > sseLineChars)
      throw new ResponseTooLargeError("a line of the event stream", "sseLineChars", sseLineChars);
  }

  #line(line: string): void {
    if (line === "") {
      this.#dispatch();
      return;
    }
    if (line.charCodeAt(0) === 58 /* ':' */) {
      this.handlers.comment();
      return;
    }
    this.#eventChars += line.length;
    this.#eventLines += 1;
    const { sseEventChars, sseEventLines } = this.limits;
    if (this.#eventChars > sseEventChars) {
      throw new ResponseTooLargeError("an event of the event stream", "sseEventChars", sseEventChars);
    }
    if (this.#eventLines > sseEventLines) {
      throw new ResponseTooLargeError("an event of the event stream", "sseEventLines", sseEventLines);
    }
    const colon = line.indexOf(":");
    const field = colon === -1 ? line : line.slice(0, colon);
    let value = colon === -1 ? "" : line.slice(colon + 1);
    if (value.charCodeAt(0) === 32) value = value.slice(1);
    switch (field) {
      case "event":
        this.#type = value;
        break;
      case "data":
        this.#data += `${value}\n`;
        this.#hasData = true;
        break;
      case "id":
        if (!value.includes("\0")) this.#idBuffer = value;
        break;
      // `retry` is ignored: reconnection follows the client's own backoff.
    }
  }

  #dispatch(): void {
    this.lastEventId = this.#idBuffer;
    const type = this.#type || "message";
    const data = this.#data.slice(0, -1);
    const hasData = this.#hasData;
    this.#type = "";
    this.#data = "";
    this.#hasData = false;
    this.#eventChars = 0;
    this.#eventLines = 0;
    if (hasData) this.handlers.event({ type, data, lastEventId: this.lastEventId });
  }
}
