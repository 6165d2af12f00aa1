# Roundhouse: the API server and the aggregation workers share this image (see docker-compose.yml).
#   docker build -t roundhouse .
#   docker run --rm -e REDIS_URL=redis://host:6379 -p 8080:8080 roundhouse start --no-worker
#   docker run --rm -e REDIS_URL=redis://host:6379 roundhouse worker

FROM node:20-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
# The optional native backend (@tensorflow/tfjs-node) downloads libtensorflow at install time; when that
# fails, npm ci goes on without it and Roundhouse runs on the WASM backend.
RUN npm ci --no-audit --no-fund
COPY . .
RUN npm run build && npm prune --omit=dev --no-audit --no-fund

FROM node:20-slim
ENV NODE_ENV=production \
    PORT=8080
WORKDIR /app
COPY --from=build --chown=root:root /app/package.json ./
COPY --from=build --chown=root:root /app/node_modules ./node_modules
COPY --from=build --chown=root:root /app/dist ./dist
COPY --from=build --chown=root:root /app/bin ./bin
COPY --from=build --chown=root:root /app/schemas ./schemas
COPY --from=build --chown=root:root /app/data ./data
# The code is owned by root and read-only to the process, which runs as the image's unprivileged `node` user.
USER node
EXPOSE 8080
ENTRYPOINT ["node", "bin/roundhouse.js"]
CMD ["start"]
