// nginx as the reference reverse proxy: one worker, keep-alive both sides, no auth.
import { spawnSync } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { waitForPort } from "./net.mjs";
import { removeLater, startProcess } from "./procs.mjs";

export function findNginx() {
  for (const bin of ["nginx", "/usr/sbin/nginx", "/usr/local/sbin/nginx", "/usr/local/nginx/sbin/nginx"]) {
    const r = spawnSync(bin, ["-v"], { encoding: "utf8" });
    if (r.status === 0) return { bin, version: (r.stderr || r.stdout).trim().replace(/^nginx version: /, "") };
  }
  return undefined;
}

function config(dir, port, upstreamPort, workers) {
  return `
daemon off;
master_process on;
worker_processes ${workers};
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
${process.getuid?.() === 0 ? "user root;" : ""}
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path ${dir}/client_body;
  proxy_temp_path ${dir}/proxy;
  fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi;
  scgi_temp_path ${dir}/scgi;
  keepalive_requests 1000000;
  keepalive_timeout 65s;

  upstream agent {
    server 127.0.0.1:${upstreamPort};
    keepalive 64;
    keepalive_requests 1000000;
  }
  server {
    listen 127.0.0.1:${port};
    location / {
      proxy_pass http://agent;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }
  }
}
`;
}

/** Starts nginx on `port` in front of the upstream (`workers` worker processes); resolves when it accepts connections. */
export async function startNginx(bin, port, upstreamPort, workers = 1) {
  const dir = removeLater(mkdtempSync(join(tmpdir(), "keyward-bench-nginx-")));
  const conf = join(dir, "nginx.conf");
  writeFileSync(conf, config(dir, port, upstreamPort, workers));
  const { child, stderr } = await startProcess("nginx", bin, ["-p", dir, "-e", join(dir, "error.log"), "-c", conf], {
    stopSignal: "SIGQUIT",
  });
  await waitForPort(port, child, stderr);
  return { url: `http://127.0.0.1:${port}`, pid: child.pid };
}
