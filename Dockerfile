# syntax=docker/dockerfile:1
#
# Keyward server image: `docker build -t keyward .`
#
# Not built on the machine this file was written on (no Docker there). What was checked instead:
# the build stage's commands, run by hand in a clean copy of the repository, produce a tree that
# serves; test/deploy-files.test.ts checks the invariants below (non-root user, health check,
# entrypoint). See docs/deployment.md.
#
# Two stages: the build stage has the compilers better-sqlite3's native addon may need (it uses a
# prebuilt binary when one matches, else compiles with python3, make and g++, all in the full
# node image); the runtime stage has node, production node_modules and compiled JavaScript only.
# Both stages are Debian bookworm, so the addon built in one loads in the other (same glibc).

FROM node:20-bookworm AS build
WORKDIR /src

# Manifests first: the dependency layer is rebuilt only when they change.
# --ignore-scripts: the root `prepare` script would compile sources that are not copied yet;
# better-sqlite3, the one runtime dependency with an install script, is built explicitly.
# `npm install` rather than `npm ci`, as in .ci/run: the lockfile is written by a newer npm than
# the one in this image, and `npm ci` may refuse it. The lockfile still pins every version.
COPY package.json package-lock.json tsconfig.base.json ./
COPY packages/sdk/package.json packages/sdk/
COPY packages/server/package.json packages/server/
COPY packages/console/package.json packages/console/
RUN npm install --no-audit --no-fund --ignore-scripts \
 && npm rebuild better-sqlite3

COPY packages/sdk/tsconfig.json packages/sdk/
COPY packages/sdk/src packages/sdk/src
COPY packages/server/tsconfig.json packages/server/
COPY packages/server/src packages/server/src
# The web console (Vite): `npm run build` bundles it into packages/console/dist after the server.
COPY packages/console/tsconfig.json packages/console/index.html packages/console/vite.config.ts packages/console/
COPY packages/console/src packages/console/src
# Compile, drop dev dependencies (TypeScript, vitest, …) from node_modules, keep only the compiled
# addon of better-sqlite3 (its sources and object files are ~25 MB), and make the CLI executable
# for the `keyward` link below.
RUN npm run build \
 && npm prune --omit=dev --no-audit --no-fund --ignore-scripts \
 && cd node_modules/better-sqlite3 \
 && mv build/Release/better_sqlite3.node /tmp/ \
 && rm -rf build deps src \
 && mkdir -p build/Release \
 && mv /tmp/better_sqlite3.node build/Release/ \
 && cd /src \
 && chmod 0755 packages/server/dist/cli/main.js

FROM node:20-bookworm-slim AS runtime
ENV NODE_ENV=production \
    KEYWARD_HOST=0.0.0.0 \
    KEYWARD_PORT=8080 \
    KEYWARD_DATA_DIR=/data
WORKDIR /app

# Owned by root and read-only to the server's user: a compromised process cannot rewrite its code.
COPY --from=build /src/package.json ./
COPY --from=build /src/node_modules ./node_modules
COPY --from=build /src/packages/server/package.json packages/server/
COPY --from=build /src/packages/server/dist packages/server/dist
COPY --from=build /src/packages/sdk/package.json packages/sdk/
COPY --from=build /src/packages/sdk/dist packages/sdk/dist
# Static files only: the server serves them at /console from ../console/dist beside its own package.
COPY --from=build /src/packages/console/dist packages/console/dist

# `keyward …` on the PATH (for `docker exec … keyward keys list`); /data for the SQLite mode
# (a single container with a volume), writable by the server's user only.
RUN ln -s /app/packages/server/dist/cli/main.js /usr/local/bin/keyward \
 && mkdir -m 0700 /data \
 && chown 1000:1000 /data

# The image's `node` user, by number: Kubernetes' runAsNonRoot can only verify a numeric user.
USER 1000:1000
EXPOSE 8080

# The slim image has no curl: node's own fetch asks /healthz (process up). Readiness (the store
# answers) is /readyz; orchestrators that distinguish the two should probe it separately.
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.KEYWARD_PORT||8080)+'/healthz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]

# Node runs as PID 1 and handles SIGTERM itself: stop accepting, drain in-flight requests
# (shutdown_timeout_ms, default 10 s), flush usage counters and the audit queue, exit 0.
ENTRYPOINT ["keyward"]
CMD ["serve"]
