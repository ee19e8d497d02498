# Builds dist/riakfs from source, then ships it alone in a slim image with fuse3.
# Mounting from a container needs --device /dev/fuse --cap-add SYS_ADMIN.
FROM node:24-bookworm AS build
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY . .
RUN npm run build

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends fuse3 ca-certificates \
 && rm -rf /var/lib/apt/lists/*
COPY --from=build /src/dist/riakfs /usr/local/bin/riakfs
ENTRYPOINT ["/usr/local/bin/riakfs"]
CMD ["--help"]
