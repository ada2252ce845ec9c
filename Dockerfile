# syntax=docker/dockerfile:1
# Lanyard container image. TypeScript runs directly on Node's type stripping, so there is no
# build stage: one stage installs production dependencies, the other runs as a non-root user.

FROM node:24-bookworm-slim AS deps
WORKDIR /app
COPY package.json package-lock.json ./
# argon2 ships prebuilt binaries for linux-x64/arm64 inside its npm package.
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force

FROM node:24-bookworm-slim AS runtime
# MALLOC_MMAP_THRESHOLD_ as npm start sets it (decision 0059): blocks of 128 KiB or more are mapped
# and given back when freed, not kept in the heap after V8's compilers are done with them.
ENV NODE_ENV=production \
    HOST=0.0.0.0 \
    PORT=3000 \
    DATA_DIR=/data \
    UV_THREADPOOL_SIZE=4 \
    MALLOC_MMAP_THRESHOLD_=131072
WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
COPY package.json ./
COPY config ./config
COPY src ./src
COPY views ./views
COPY public ./public
# `npm run cli -- …` inside the container runs its Node check first (package.json "precli").
COPY scripts/check-node.mjs ./scripts/check-node.mjs
RUN mkdir -p /data && chown node:node /data
USER node
EXPOSE 3000
HEALTHCHECK --interval=30s --timeout=3s --start-period=20s --retries=3 \
  CMD node -e "fetch('http://127.0.0.1:' + (process.env.PORT || 3000) + '/healthz').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"
# The same node options as package.json's start script (decision 0059: an 8 MB young generation).
CMD ["node", "--max-semi-space-size=8", "--experimental-strip-types", "--no-warnings=ExperimentalWarning", "src/main.ts"]
