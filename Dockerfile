# syntax=docker/dockerfile:1
# One image for every Sluice process: `sluice control-plane` (the default command) or `sluice worker`.
# Node 24 runs the TypeScript sources directly (type stripping), so there is no build stage: the stages only
# keep npm, the lockfile's dev dependencies and the package caches out of the image that runs.
ARG NODE_IMAGE=node:24-slim

# Only the package manifests, so the dependency layer below is rebuilt when a manifest changes, not on
# every source edit (COPY --from compares content, and these files don't change with the code).
FROM ${NODE_IMAGE} AS manifests
WORKDIR /src
COPY packages/ packages/
RUN mkdir -p /manifests \
 && find packages -mindepth 2 -maxdepth 2 -name package.json -exec cp --parents {} /manifests/ \;

FROM ${NODE_IMAGE} AS deps
WORKDIR /app
ENV NODE_ENV=production
COPY package.json package-lock.json ./
COPY --from=manifests /manifests/ ./
# Production dependencies only: the repository pins `node` itself as a dev dependency; here the base
# image's Node 24 runs everything.
RUN npm ci --omit=dev --no-audit --no-fund \
 && npm cache clean --force

FROM ${NODE_IMAGE} AS runtime
ENV NODE_ENV=production
# A fixed, non-root identity (10001) so mounted secrets, certificates and volumes can be owned to match.
RUN groupadd --system --gid 10001 sluice \
 && useradd --system --uid 10001 --gid sluice --home-dir /home/sluice --create-home --shell /usr/sbin/nologin sluice \
 && install -d -o sluice -g sluice -m 0700 /var/lib/sluice /var/lib/sluice/data /var/lib/sluice/state /var/lib/sluice/bootstrap
WORKDIR /app
# Code and dependencies belong to root and are read-only for the process that runs them.
COPY --from=deps /app/ ./
COPY packages/ packages/
COPY deploy/sluice /usr/local/bin/sluice
COPY deploy/healthcheck.mjs deploy/healthcheck.mjs
RUN chmod 0755 /usr/local/bin/sluice && chmod 0644 deploy/healthcheck.mjs
USER 10001:10001
# Control plane: its TLS 1.3 port answers grpc.health.v1; worker: its metrics listener answers.
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 CMD ["node", "/app/deploy/healthcheck.mjs"]
EXPOSE 8443
CMD ["sluice", "control-plane"]
