import { describe, expect, it } from "vitest";
import { ResponseTooLargeError } from "../errors.js";
import { type SseEvent, type SseLimits, SseParser } from "./sse-parser.js";

function parse(chunks: string[], lastEventId = "", limits?: SseLimits) {
  const events: SseEvent[] = [];
  let comments = 0;
  const p = new SseParser({ event: (e) => events.push(e), comment: () => comments++ }, lastEventId, limits);
  for (const c of chunks) p.push(c);
  return { events, comments, lastEventId: p.lastEventId };
}

describe("SseParser", () => {
  it("parses Keyward's events with ids, and counts heartbeat comments", () => {
    const out = parse([': heartbeat\n\nid: 7\nevent: changed\ndata: {"name":"a","version":2}\n\n: hb\n\n']);
    expect(out.events).toEqual([{ type: "changed", data: '{"name":"a","version":2}', lastEventId: "7" }]);
    expect(out.comments).toBe(2);
    expect(out.lastEventId).toBe("7");
  });

  it("handles any chunking, CRLF split across chunks, CR and LF line ends", () => {
    const text =
      "id: 1\r\nevent: changed\r\ndata: x\r\n\r\nid: 2\revent: removed\rdata: y\r\rid: 3\nevent: changed\ndata: z\n\n";
    const whole = parse([text]).events;
    expect(whole.map((e) => [e.type, e.data, e.lastEventId])).toEqual([
      ["changed", "x", "1"],
      ["removed", "y", "2"],
      ["changed", "z", "3"],
    ]);
    for (let size = 1; size < 8; size++) {
      const chunks: string[] = [];
      for (let i = 0; i < text.length; i += size) chunks.push(text.slice(i, i + size));
      expect(parse(chunks).events).toEqual(whole);
    }
  });

  it("joins multi-line data, keeps the id across events, strips one space and a BOM", () => {
    const out = parse(["\uFEFFid: 9\ndata:  two spaces\ndata:b\n\ndata: next\n\n"]);
    expect(out.events).toEqual([
      { type: "message", data: " two spaces\nb", lastEventId: "9" },
      { type: "message", data: "next", lastEventId: "9" },
    ]);
  });

  it("does not dispatch an event without data, but still takes its id", () => {
    const out = parse(["id: 4\nevent: changed\n\n"], "3");
    expect(out.events).toEqual([]);
    expect(out.lastEventId).toBe("4");
  });

  it("keeps the reconnect id it started with until a new one arrives, and ignores ids with NUL", () => {
    expect(parse(["data: a\n\n"], "12").events[0]!.lastEventId).toBe("12");
    expect(parse(["id: a\0b\ndata: a\n\n"], "12").events[0]!.lastEventId).toBe("12");
  });

  it("refuses an endless line instead of buffering it", () => {
    expect(() => parse(["data: ", "x".repeat(2 << 20)])).toThrow(/too large/);
  });

  describe("limits (issue 18)", () => {
    const limits: SseLimits = { sseLineChars: 16, sseEventChars: 40, sseEventLines: 4 };
    const refusal = (chunks: string[]) => {
      try {
        parse(chunks, "", limits);
      } catch (err) {
        return err;
      }
      return undefined;
    };

    it("accepts a line of exactly sseLineChars, refuses one more, ended or still open", () => {
      const line = `data: ${"x".repeat(10)}`; // 16 characters
      expect(parse([`${line}\n\n`], "", limits).events).toHaveLength(1);
      expect(refusal([`${line}x\n\n`])).toMatchObject({ code: "response_too_large", limit: "sseLineChars" });
      // Never ended, arriving in pieces: refused when the piece that passes the limit arrives.
      expect(refusal(["data: xxxxx", "xxxxx", "x"])).toBeInstanceOf(ResponseTooLargeError);
      expect(refusal(["data: xxxxx", "xxxxx"])).toBeUndefined();
    });

    it("refuses an event whose lines add up past sseEventChars, or number more than sseEventLines", () => {
      expect(refusal(["data: 0123456789\n".repeat(3)])).toMatchObject({ limit: "sseEventChars", maxSize: 40 });
      expect(refusal(["id: 1\n".repeat(5)])).toMatchObject({ limit: "sseEventLines", maxSize: 4 });
      expect(refusal(["id: 1\n".repeat(4)])).toBeUndefined();
    });

    it("counts per event: a blank line starts over, comments count for nothing", () => {
      const event = "id: 1\nevent: changed\ndata: {}\n\n";
      const out = parse([event.repeat(100), ": hb\n".repeat(100), event], "", limits);
      expect(out.events).toHaveLength(101);
    });
  });
});
