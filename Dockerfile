# One image for both production roles:
#   docker run IMAGE            -> the api (CMD "api"), HTTP on PORT (3000)
#   docker run IMAGE worker     -> the packaging worker, /healthz on WORKER_HEALTH_PORT (3001)
#   docker run --entrypoint node IMAGE dist/migrate.js   -> applies prisma/migrations, then exits
#   docker run --entrypoint node IMAGE dist/cli.js ...   -> the operator CLI
# Node 24 LTS: the AWS SDK is about to require Node >= 22. Override with --build-arg NODE_IMAGE=node:22-bookworm-slim.
ARG NODE_IMAGE=node:24-bookworm-slim

# ---- build: every dependency, Prisma client generation and tsc ----------------------------------------------
FROM ${NODE_IMAGE} AS build
WORKDIR /app

# Manifests first so that the dependency layer is reused until package*.json change.
# --ignore-scripts: the project relies on no install script (npm 11 skips them anyway), and it keeps npm 10
# (Node 22) from running third-party postinstalls such as Prisma's engine download.
# vendor/ holds crc-32-native, a local package the lock file points at (see package.json "overrides").
COPY package.json package-lock.json ./
COPY vendor ./vendor
RUN npm ci --ignore-scripts --no-audit --no-fund

# `npm run build` = scripts/prisma-generate.mjs (prisma generate into src/generated/prisma, offline: it
# points PRISMA_SCHEMA_ENGINE_BINARY at node; then the client reads its query compiler as text instead of
# holding it as an ES module) + tsc -p tsconfig.build.json into dist/.
COPY tsconfig.json tsconfig.build.json prisma.config.ts ./
COPY scripts ./scripts
COPY prisma ./prisma
COPY src ./src
RUN npm run build

# ---- runtime: production dependencies, compiled code, SQL migrations ------------------------------------------
FROM ${NODE_IMAGE} AS runtime
ENV NODE_ENV=production \
    NPM_CONFIG_UPDATE_NOTIFIER=false
WORKDIR /app

# Production dependencies only. The generated Prisma client is compiled into dist/generated, so neither the
# prisma CLI nor any engine binary is needed at run time (driver adapter @prisma/adapter-pg).
COPY package.json package-lock.json ./
COPY vendor ./vendor
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund \
 && npm cache clean --force

COPY --from=build /app/dist ./dist
# dist/platform/prisma/migrator.js reads ../../../prisma/migrations, i.e. /app/prisma/migrations.
COPY prisma ./prisma
COPY docker/healthcheck.mjs ./docker/healthcheck.mjs

# The code stays owned by root and read-only to the service. Only DATA_DIR (./data, used by the local
# all-in-one's embedded S3 when the image runs with no role and no S3_ENDPOINT) is writable.
RUN mkdir -p /app/data && chown node:node /app/data
USER node

# 3000: the api (PORT). 3001: the worker's operational endpoints, /healthz and /readyz (WORKER_HEALTH_PORT).
# 3002: the api's catalogue API (INTERNAL_PORT), for the platform's workflow engine only.
EXPOSE 3000 3001 3002

# Liveness for either role: GET /healthz on PORT, else on WORKER_HEALTH_PORT (see docker/healthcheck.mjs).
HEALTHCHECK --interval=15s --timeout=6s --start-period=30s --retries=3 \
  CMD ["node", "docker/healthcheck.mjs"]

# Exec form: node is PID 1 and receives SIGTERM itself (Nest shutdown hooks drain the worker and the server).
ENTRYPOINT ["node", "dist/main.js"]
CMD ["api"]
