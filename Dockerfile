# flowsync: the service, and the image mongo-init and the demo writer run in too.
#   docker build -t flowsync .
#   docker run -e MONGO_URL='mongodb://mongo:27017/?replicaSet=rs0' -p 3000:3000 flowsync
FROM node:20-slim

ENV NODE_ENV=production \
    MONGOMS_DISABLE_POSTINSTALL=1 \
    HOST=0.0.0.0 \
    PORT=3000
WORKDIR /app

# Dependencies first, so source edits reuse this layer. tsx is a runtime dependency:
# flowsync and its filters/ run as TypeScript, with no build step.
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force

COPY tsconfig.json ./
COPY src ./src
COPY filters ./filters
COPY mongo-init ./mongo-init
COPY scripts ./scripts

# Files stay root-owned (read-only to the service); the process runs as the image's `node` user.
USER node
EXPOSE 3000

HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
  CMD ["node", "-e", "fetch(`http://127.0.0.1:${process.env.PORT}/readyz`).then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]

# node runs flowsync directly (no npm or tsx wrapper process), so SIGTERM reaches its graceful shutdown.
CMD ["node", "--import", "tsx", "src/main.ts"]
