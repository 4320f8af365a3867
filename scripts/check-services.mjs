// Fails (exit 1) unless PostgreSQL and Redis answer at the URLs the tests will use.
import { spawnSync } from "node:child_process";
import net from "node:net";
import pg from "pg";

const dbUrl = process.env.KEYWARD_TEST_DATABASE_URL;
const redisUrl = process.env.KEYWARD_TEST_REDIS_URL;
let failed = false;

if (!dbUrl || !redisUrl) {
  console.error("check-services: KEYWARD_TEST_DATABASE_URL and KEYWARD_TEST_REDIS_URL must both be set");
  process.exit(1);
}

try {
  const client = new pg.Client({ connectionString: dbUrl, connectionTimeoutMillis: 5000 });
  await client.connect();
  await client.query("SELECT 1");
  await client.end();
  console.log("check-services: PostgreSQL reachable");
} catch (err) {
  console.error(`check-services: PostgreSQL unreachable at KEYWARD_TEST_DATABASE_URL (${err.message})`);
  failed = true;
}

try {
  const { hostname, port } = new URL(redisUrl);
  await new Promise((resolve, reject) => {
    const sock = net.connect({ host: hostname, port: Number(port || 6379) });
    sock.setTimeout(5000, () => reject(new Error("timeout")));
    sock.on("error", reject);
    sock.on("connect", () => sock.write("PING\r\n"));
    sock.on("data", (d) => {
      sock.destroy();
      d.toString().startsWith("+PONG") ? resolve() : reject(new Error(`unexpected reply ${d.toString().trim()}`));
    });
  });
  console.log("check-services: Redis reachable");
} catch (err) {
  console.error(`check-services: Redis unreachable at KEYWARD_TEST_REDIS_URL (${err.message})`);
  failed = true;
}

// The Redis fault tests start (and kill) a redis-server of their own on a free port.
if (spawnSync("redis-server", ["--version"], { stdio: "ignore" }).status === 0) {
  console.log("check-services: redis-server available for the fault tests");
} else {
  console.error("check-services: redis-server is not installed (apt-get install redis-server)");
  failed = true;
}

process.exit(failed ? 1 : 0);
