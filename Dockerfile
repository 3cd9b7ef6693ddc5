# mirrorgate: one image for every command (mirror, webhook, hosts-toml, ...). docs/deploy.md shows how to build it.
#   docker build -t mirrorgate:0.1.0 .

# Build: the full dependency tree, TypeScript compiled to dist/.
FROM node:24-bookworm-slim AS build
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund --loglevel=error
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build

# Runtime: Node 24 LTS, production dependencies only, the compiled code, a non-root user.
FROM node:24-bookworm-slim
ENV NODE_ENV=production
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund --loglevel=error \
 && npm cache clean --force
COPY --from=build /src/dist ./dist
# uid/gid 10001, as the manifests' securityContext; the cache directory is owned by it (an unmounted default).
RUN groupadd --system --gid 10001 mirrorgate \
 && useradd --system --uid 10001 --gid 10001 --home-dir /nonexistent --no-create-home --shell /usr/sbin/nologin mirrorgate \
 && mkdir -p /var/lib/mirrorgate \
 && chown 10001:10001 /var/lib/mirrorgate
USER 10001:10001
EXPOSE 5000 8443
ENTRYPOINT ["node", "dist/main.js"]
CMD ["mirror", "--listen", ":5000", "--storage", "/var/lib/mirrorgate"]
