# flowsync: the service, and the image mongo-init and the demo writer run in too.
#   docker build -t flowsync .
#   docker run -e MONGO_URL='mongodb://mongo:27017/?replicaSet=rs0' -p 3000:3000 flowsync
#
# Two stages: `build` installs everything and runs `npm run build` (esbuild, tsc); the runtime stage has
# the production dependencies and dist/ only: no tsx, esbuild, TypeScript or mongodb-memory-server.

FROM node:20-slim AS build
ENV MONGOMS_DISABLE_POSTINSTALL=1
WORKDIR /src
COPY package.json package-lock.json ./
COPY packages/client/package.json packages/client/
RUN npm ci --no-audit --no-fund
COPY tsconfig.json ./
COPY packages/client ./packages/client
COPY src ./src
COPY filters ./filters
COPY mongo-init ./mongo-init
COPY scripts ./scripts
RUN npm run build

FROM node:20-slim
ENV NODE_ENV=production \
    HOST=0.0.0.0 \
    PORT=3000 \
    FILTERS_DIR=/app/dist/filters
WORKDIR /app

# Dependencies first, so source edits reuse this layer. The workspace's package.json is needed by npm ci.
COPY package.json package-lock.json ./
COPY packages/client/package.json packages/client/
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force

COPY --from=build /src/dist ./dist

# Files stay root-owned (read-only to the service); the process runs as the image's `node` user.
# A filter folder mounted over FILTERS_DIR holds .js / .mjs filters; they may import "flowsync/filters" and "zod".
USER node
EXPOSE 3000

HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
  CMD ["node", "-e", "fetch(`http://127.0.0.1:${process.env.PORT}/readyz`).then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]

# node runs flowsync directly (no npm wrapper process), so SIGTERM reaches its graceful shutdown.
CMD ["node", "dist/main.js"]
