import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { request } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";

/**
 * A stand-in for packages/console/dist as Vite lays it out (index.html, a hashed script, a
 * root-level file), so the serving tests do not depend on the UI's build. Beside `dist/` sits a
 * file that no request may reach.
 */
export interface ConsoleBuild {
  root: string;
  dir: string;
  indexHtml: string;
  script: string;
  /** What `root/outside.txt` holds: a path that escapes `dir` would answer it. */
  outsideText: string;
  remove(): void;
}

export function makeConsoleBuild(): ConsoleBuild {
  const root = mkdtempSync(join(tmpdir(), "keyward-console-"));
  const dir = join(root, "dist");
  mkdirSync(join(dir, "assets"), { recursive: true });
  const indexHtml =
    '<!doctype html><html lang="en"><head><title>Keyward</title>' +
    '<script type="module" src="/console/assets/index-AbC123.js"></script></head><body><div id="root"></div></body></html>';
  const script = 'document.getElementById("root").textContent = "console";\n';
  const outsideText = "outside-the-build-0123456789";
  writeFileSync(join(dir, "index.html"), indexHtml);
  writeFileSync(join(dir, "assets", "index-AbC123.js"), script);
  writeFileSync(join(dir, "assets", "index-AbC123.css"), "body{margin:0}\n");
  writeFileSync(join(dir, "favicon.svg"), '<svg xmlns="http://www.w3.org/2000/svg"/>');
  writeFileSync(join(root, "outside.txt"), outsideText);
  return { root, dir, indexHtml, script, outsideText, remove: () => rmSync(root, { recursive: true, force: true }) };
}

export interface RawResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/**
 * A request whose path is sent byte for byte: fetch() resolves `..` and `%2e` before sending,
 * which would hide exactly what the path-safety tests are about.
 */
export function rawGet(baseUrl: string, path: string, method = "GET"): Promise<RawResponse> {
  const { hostname, port } = new URL(baseUrl);
  return new Promise((resolve, reject) => {
    const req = request({ hostname, port, path, method }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () =>
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString("utf8") }),
      );
      res.on("error", reject);
    });
    req.on("error", reject);
    req.end();
  });
}
