import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { CHUNK, HostileServer } from "../../test-support/client/hostile-server.js";
import { ResponseTooLargeError } from "../errors.js";
import { createJwksCache, type JwkImporter, JwksUnavailableError, MAX_JWKS_BYTES } from "./jwks-export.js";

/*
 * Issue 18 finding 7, the verifier's side: a JWKS endpoint answering without end, over a real
 * socket and the default fetch. The server pours up to 1 GiB as fast as the client reads; the
 * cache must cut the connection near MAX_JWKS_BYTES (the server's count includes what the kernel's
 * socket buffers held, hence the slack) and keep the keys it had.
 */
const SOCKET_SLACK = 48 * 1024 * 1024;

let huge = false;
let server: HostileServer;
const importKey: JwkImporter<string> = (jwk) => (typeof jwk.x === "string" ? jwk.x : undefined);

beforeEach(async () => {
  huge = false;
  server = await new HostileServer((_req, res) => {
    res.writeHead(200, { "content-type": "application/json" });
    if (huge) server.pour(res, '{"keys":[', " ");
    else res.end(JSON.stringify({ keys: [{ kid: "a", x: "key-a" }] }));
  }).start();
});

afterEach(() => server.stop());

describe("JWKS larger than MAX_JWKS_BYTES (1 MiB)", () => {
  it("first load: JwksUnavailableError caused by ResponseTooLargeError; the socket is cut early", async () => {
    huge = true;
    const jwks = createJwksCache({ uri: `${server.url}/jwks`, importKey });
    const poured = server.nextPour();
    const err = await jwks.resolveMissing("a").catch((e: unknown) => e);
    expect(err).toBeInstanceOf(JwksUnavailableError);
    expect((err as Error).cause).toBeInstanceOf(ResponseTooLargeError);
    expect((err as Error).cause).toMatchObject({ code: "response_too_large", maxSize: MAX_JWKS_BYTES });
    const { sent, cut } = await poured;
    expect(cut).toBe(true);
    expect(sent).toBeLessThan(MAX_JWKS_BYTES + CHUNK + SOCKET_SLACK);
  });

  it("refetch: the oversized key set is dropped and the keys held before keep verifying", async () => {
    const jwks = createJwksCache({ uri: `${server.url}/jwks`, importKey, cooldownMs: 1 });
    expect(await jwks.resolveMissing("a")).toBe("key-a");
    huge = true;
    const poured = server.nextPour();
    expect(await jwks.resolveMissing("rotated")).toBeUndefined();
    expect((await poured).cut).toBe(true);
    expect(jwks.get("a")).toBe("key-a");
  });
});
