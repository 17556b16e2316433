# nnserve image: `docker build -t nnserve .` then see docker-compose.yml and k8s/.
# Two stages: the build stage compiles TypeScript with the dev dependencies; the runtime stage has
# only the production dependencies and the compiled code. Both install from the npm registry alone
# (.npmrc and ONNXRUNTIME_NODE_INSTALL=skip stop onnxruntime-node's CUDA download).
ARG NODE_IMAGE=node:20.20.2-bookworm-slim

FROM ${NODE_IMAGE} AS build
WORKDIR /app
ENV ONNXRUNTIME_NODE_INSTALL=skip
COPY package.json package-lock.json .npmrc tsconfig.json ./
RUN npm ci
COPY src ./src
COPY handlers ./handlers
RUN npm run build

FROM ${NODE_IMAGE} AS runtime
WORKDIR /app
ENV NODE_ENV=production \
    ONNXRUNTIME_NODE_INSTALL=skip
COPY package.json package-lock.json .npmrc ./
# onnxruntime-node ships binaries for every OS and only Linux's load here; source maps only help
# debuggers. Without both, node_modules shrinks from ~490 MB to ~240 MB.
RUN npm ci --omit=dev \
    && npm cache clean --force \
    && rm -rf node_modules/onnxruntime-node/bin/napi-v*/darwin node_modules/onnxruntime-node/bin/napi-v*/win32 \
    && find node_modules -name '*.map' -delete
COPY --from=build /app/dist/src ./dist/src
COPY --from=build /app/dist/handlers ./dist/handlers
# The bundled archives seed the model store: Docker copies them into an empty named volume, and the
# Kubernetes init container copies them into an empty PersistentVolumeClaim.
COPY --chown=1000:1000 model-store/*.mar /models/

# Inside a container nnserve listens on every interface (outside, compose publishes the ports on
# 127.0.0.1 only); the key file and unpacked archives go to /tmp so the root file system can be
# read-only.
ENV NNSERVE_INFERENCE_ADDRESS=http://0.0.0.0:8080 \
    NNSERVE_MANAGEMENT_ADDRESS=http://0.0.0.0:8081 \
    NNSERVE_METRICS_ADDRESS=http://0.0.0.0:8082 \
    NNSERVE_MODEL_STORE=/models \
    NNSERVE_KEY_FILE=/tmp/key_file.json \
    TMPDIR=/tmp

# The node image's unprivileged user, by number so Kubernetes can verify runAsNonRoot.
USER 1000:1000
EXPOSE 8080 8081 8082
VOLUME ["/models"]
# /ping is TorchServe's health check: 200 once every start-up model has a ready worker.
HEALTHCHECK --interval=10s --timeout=3s --start-period=120s --retries=3 \
    CMD ["node", "-e", "fetch('http://127.0.0.1:8080/ping').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
CMD ["node", "--max-semi-space-size=4", "--initial-old-space-size=64", "dist/src/cli.js", "start", "--model-store", "/models"]
