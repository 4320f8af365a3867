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

/** A line longer than this is not an event Keyward sends: the stream is treated as broken. */
const MAX_LINE = 1 << 20;

/**
 * The event-stream parser of the WHATWG HTML standard (§9.2.6), fed decoded text in chunks of any
 * size: lines end in CRLF, LF or CR (a CRLF may be split across chunks), `data` lines accumulate,
 * `id` persists across events, a blank line dispatches, an event without data is not dispatched.
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

  constructor(
    private readonly handlers: SseHandlers,
    lastEventId = "",
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
      const line = this.#buffer + text.slice(start, i);
      this.#buffer = "";
      if (c === 13) {
        if (i + 1 === text.length) this.#skipLf = true;
        else if (text.charCodeAt(i + 1) === 10) i++;
      }
      start = i + 1;
      this.#line(line);
    }
    this.#buffer += text.slice(start);
    if (this.#buffer.length > MAX_LINE) throw new Error("event stream line too long");
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
    if (hasData) this.handlers.event({ type, data, lastEventId: this.lastEventId });
  }
}
