# Prism: `make run` serves ./data on :8080; `make test` installs what the
# tests need (libvips, MinIO) and runs them all against real services.

GO            ?= go
GOBIN         := $(shell $(GO) env GOPATH)/bin
MINIO_VERSION := v0.0.0-20260212201848-7aac2a2c5b7c
ADDR          ?= :8080
PORT          := $(lastword $(subst :, ,$(ADDR)))
METRICS_ADDR  ?= :9464
METRICS_PORT  := $(lastword $(subst :, ,$(METRICS_ADDR)))
DEV_KEY_FILE  := .dev-api-key

export MALLOC_ARENA_MAX = 2

.PHONY: run build deps test-deps minio seed test vet clean bench docker

run: build seed
	@test -s $(DEV_KEY_FILE) || od -An -tx1 -N16 /dev/urandom | tr -d ' \n' > $(DEV_KEY_FILE)
	@echo
	@echo "Prism is starting on http://localhost:$(PORT), serving ./data. Try:"
	@echo "  curl -o cat.jpg 'http://localhost:$(PORT)/samples/flowers.jpeg?w=400&quality=80'"
	@echo "  curl -o crop.jpg 'http://localhost:$(PORT)/samples/flowers.jpeg?resize=400,400&crop_strategy=smart'"
	@echo "  curl -H 'Accept: image/avif,image/webp' -o auto 'http://localhost:$(PORT)/samples/flowers.jpeg?w=600&format=auto'"
	@echo "  curl -o anim.webp 'http://localhost:$(PORT)/samples/animated.gif?w=200&fm=webp'"
	@echo "  curl -I 'http://localhost:$(PORT)/samples/portrait.jpg?h=300'"
	@echo
	@echo "Prometheus metrics: http://localhost:$(METRICS_PORT)/metrics (PRISM_METRICS_ADDR; not on the image port)"
	@echo
	@echo "Upload with the development API key (kept in $(DEV_KEY_FILE)):"
	@echo "  curl -H \"Authorization: Bearer $$(cat $(DEV_KEY_FILE))\" -F file=@testdata/images/concert.jpg http://localhost:$(PORT)/v1/images"
	@echo
	PRISM_ADDR=$(ADDR) PRISM_METRICS_ADDR=$(METRICS_ADDR) PRISM_API_KEYS="$${PRISM_API_KEYS:-$$(cat $(DEV_KEY_FILE))}" ./bin/server

# Every command (server, lambda) into bin/. CI and the Dockerfile build with it.
# VERSION is what prism_build_info reports.
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null)
build: deps
	$(GO) build -ldflags "-X github.com/prism-image/prism/app.Version=$(VERSION)" -o bin/ ./cmd/...

deps:
	@scripts/install-deps.sh

# MinIO is built from source at a pinned version: S3 tests use the real thing.
minio:
	@test -x $(GOBIN)/minio || { echo "Building MinIO $(MINIO_VERSION) (takes a few minutes, once)..."; \
		GOFLAGS=-buildvcs=false $(GO) install github.com/minio/minio@$(MINIO_VERSION); }

test-deps: minio
	@scripts/install-deps.sh test

# A few sample images for `make run`, copied once; your own files go beside them.
seed:
	@mkdir -p data/samples
	@test -f data/samples/flowers.jpeg || cp testdata/images/flowers.jpeg data/samples/flowers.jpeg
	@test -f data/samples/photo.jpg || cp testdata/images/2569067123_aca715a2ee_o.jpg data/samples/photo.jpg
	@test -f data/samples/portrait.jpg || cp testdata/images/Portrait_6.jpg data/samples/portrait.jpg
	@test -f data/samples/animated.gif || cp testdata/images/animated-loop-3.gif data/samples/animated.gif
	@test -f data/samples/alpha.png || cp testdata/images/with-alpha.png data/samples/alpha.png

test: test-deps build
	$(GO) vet ./...
	PATH="$(GOBIN):$$PATH" $(GO) test -count=1 -timeout 20m ./...
	scripts/fuzz.sh 10s
	node --test cdn/
	$(MAKE) lint-deploy

# Every fuzz target for longer: make fuzz FUZZTIME=30m
FUZZTIME ?= 5m
.PHONY: fuzz
fuzz:
	scripts/fuzz.sh $(FUZZTIME)

# CloudFormation: cfn-lint (npm, pinned in deploy/.tools) given the current
# resource specification from @aws-cdk/cfnspec (docs/deploy.md), on every
# template and on broken copies that it must reject.
.PHONY: lint-deploy
lint-deploy:
	@if [ ! -f deploy/.tools/node_modules/.package-lock.json ] || [ deploy/.tools/package-lock.json -nt deploy/.tools/node_modules/.package-lock.json ]; then \
		npm ci --prefix deploy/.tools --no-audit --no-fund --ignore-scripts; fi
	node deploy/lint.mjs
	node --test deploy/

# The load harness (benchmarks/README.md): starts bin/server, drives it and
# writes benchmarks/RESULTS.md. Flags pass through: make bench BENCH_FLAGS='-duration 5s'
bench: deps build
	@scripts/install-deps.sh bench
	$(GO) run ./benchmarks/cmd/loadbench -server bin/server $(BENCH_FLAGS)

# Needs a Docker engine: the server image (ECS) and the Lambda image.
docker:
	docker build -t prism:latest .
	docker build --target lambda -t prism-lambda:latest .

clean:
	rm -rf bin
