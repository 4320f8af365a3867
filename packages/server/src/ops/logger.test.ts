import { Writable } from "node:stream";
import { describe, expect, it } from "vitest";
import { createLogger, type LogFormat, resolveLogFormat } from "./logger.js";

const CANARY = "kwk_canary0123456789abcdefghijklmnopq";

function capture(format: LogFormat) {
  let text = "";
  const destination = new Writable({
    write(chunk, _enc, done) {
      text += String(chunk);
      done();
    },
  });
  return { logger: createLogger({ level: "debug", format, destination }), text: () => text };
}

describe("logger", () => {
  it("writes JSON lines with level names, not pino's numbers", () => {
    const out = capture("json");
    out.logger.info({ request_id: "r1" }, "keyward started");
    out.logger.warn("careful");
    const lines = out
      .text()
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines.map((l) => [l.level, l.msg])).toEqual([
      ["info", "keyward started"],
      ["warn", "careful"],
    ]);
    expect(lines[0]).toMatchObject({ service: "keyward", request_id: "r1" });
    expect(lines[0]?.time).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
  });

  it("writes one readable line per entry when pretty", () => {
    const out = capture("pretty");
    out.logger.info({ url: "http://127.0.0.1:8080", store: "sqlite" }, "keyward started");
    out.logger.error({ reason: "two words" }, "line one\nforged line");
    expect(out.text()).toMatch(
      /^\d\d:\d\d:\d\d\.\d{3} INFO {2}keyward started url=http:\/\/127\.0\.0\.1:8080 store=sqlite\n\d\d:\d\d:\d\d\.\d{3} ERROR line one\\nforged line reason="two words"\n$/,
    );
  });

  it.each<LogFormat>(["json", "pretty"])("redacts secrets in headers and secret-named fields (%s)", (format) => {
    const out = capture(format);
    out.logger.info({
      req: { headers: { authorization: `Bearer ${CANARY}`, "x-api-key": CANARY, cookie: `s=${CANARY}` } },
      headers: { "proxy-authorization": `Basic ${CANARY}` },
      api_key: CANARY,
      body: { client_secret: CANARY, refresh_token: CANARY, subject_token: CANARY },
      admin_token: CANARY,
    });
    expect(out.text()).toContain("[redacted]");
    expect(out.text()).not.toContain("canary");
  });

  it("auto is pretty on a terminal and JSON anywhere else; an explicit format wins", () => {
    expect(resolveLogFormat("auto", true)).toBe("pretty");
    expect(resolveLogFormat("auto", false)).toBe("json");
    expect(resolveLogFormat("json", true)).toBe("json");
    expect(resolveLogFormat("pretty", false)).toBe("pretty");
  });
});
