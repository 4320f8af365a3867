// A local stand-in for a cloud provider's function service, enough to show whose key a tool used.
// `GET /functions` with `X-Acs-AccessKey: <access key>` lists the functions of the account that key
// belongs to. Like many real APIs it is careless with the key: every answer carries a `debug`
// block with the key and its base64, and a 401 quotes the unknown key in its message, so the
// redaction Keyward applies to tool output is visible.
import http from "node:http";

/**
 * `accounts` maps an access key to `{account, functions}` (read on every request, so keys can be
 * added later). Resolves with `{url, accounts, requests, close}`; `requests` lists the access key
 * of every call that reached the service (for the tests).
 */
export async function startFakeCloud({ accounts, port = 0, host = "127.0.0.1" }) {
  const requests = [];
  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? "/", "http://fake-cloud");
    if (req.method !== "GET" || url.pathname !== "/functions") {
      return send(res, 404, { code: "NotFound", message: `no route ${req.method} ${url.pathname}` });
    }
    const key = req.headers["x-acs-accesskey"];
    requests.push(typeof key === "string" ? key : null);
    if (typeof key !== "string" || key === "") {
      return send(res, 401, { code: "MissingAccessKey", message: "X-Acs-AccessKey is required" });
    }
    const found = accounts[key];
    if (!found) {
      return send(res, 401, {
        code: "InvalidAccessKeyId.NotFound",
        message: `Specified access key is not found: ${key}`,
      });
    }
    const region = url.searchParams.get("region") ?? "cn-hangzhou";
    send(res, 200, {
      account: found.account,
      region,
      functions: found.functions,
      debug: { access_key: key, signature: Buffer.from(key).toString("base64") },
    });
  });
  await new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, resolve);
  });
  return {
    url: `http://${host}:${server.address().port}`,
    accounts,
    requests,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

function send(res, status, body) {
  res.writeHead(status, { "content-type": "application/json" });
  res.end(JSON.stringify(body));
}
