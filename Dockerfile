# rsp container image.
#   docker build -t rsp .
#   docker run -p 8000:8000 -p 9100:9100 -e RSP_BACKENDS=web1:80,web2:80 rsp
# The default config (config/container.lua) listens on 8000 and serves metrics and
# probes on 9100. Mount a directory at /etc/rsp to replace it with your own site.lua.
#
# NODE_IMAGE follows the newest Node 20 release on Debian 12. Pin it by digest
# (node:20-bookworm-slim@sha256:...) for builds that must be reproducible.
ARG NODE_IMAGE=node:20-bookworm-slim

# Build stage: every dependency, TypeScript compiled to dist/.
FROM ${NODE_IMAGE} AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json ./
COPY src ./src
RUN npm run build

# Runtime stage: production dependencies and the compiled code only. The files
# belong to root, so the node user that runs rsp cannot change them.
FROM ${NODE_IMAGE} AS runtime
ENV NODE_ENV=production
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force
COPY --from=build /app/dist/src ./dist/src
COPY config/container.lua /etc/rsp/site.lua

USER node
EXPOSE 8000 9100

# rsp runs as PID 1 without an init wrapper: it installs its own SIGTERM, SIGINT
# and SIGHUP handlers and drains on SIGTERM, and its only children are its
# workers, which node:cluster reaps.
STOPSIGNAL SIGTERM
# The slim image has no curl, so the check uses node's fetch. It assumes metrics
# on port 9100; a mounted config that moves them needs --health-cmd to match.
HEALTHCHECK --interval=15s --timeout=3s --start-period=10s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:9100/healthz').then((response) => process.exit(response.ok ? 0 : 1), () => process.exit(1))"]

ENTRYPOINT ["node", "/app/dist/src/main.js"]
CMD ["/etc/rsp/site.lua"]
