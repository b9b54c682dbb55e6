# syntax=docker/dockerfile:1
# Prism's container images. The default target is the server for ECS;
# `docker build --target lambda` gives the Lambda function's image. Both
# binaries are built by `make build`, the target CI builds with.

FROM golang:1.26-bookworm AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends libvips-dev pkg-config \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN make build

# The runtime has libvips and nothing to build with.
FROM debian:bookworm-slim AS runtime
RUN apt-get update \
 && apt-get install -y --no-install-recommends libvips42 ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin prism
# One malloc arena per thread would keep libvips' freed pixels resident.
ENV MALLOC_ARENA_MAX=2
USER 10001:10001

FROM runtime AS lambda
COPY --from=build /src/bin/lambda /usr/local/bin/lambda
ENTRYPOINT ["/usr/local/bin/lambda"]

FROM runtime AS server
COPY --from=build /src/bin/server /usr/local/bin/server
ENV PRISM_ADDR=:8080
# 9464: Prometheus metrics (PRISM_METRICS_ADDR), for scrapers, not the CDN.
EXPOSE 8080 9464
HEALTHCHECK --interval=15s --timeout=5s --start-period=10s --retries=3 \
  CMD ["/usr/local/bin/server", "health"]
ENTRYPOINT ["/usr/local/bin/server"]
