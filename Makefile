# runnel — build, test, benchmark.
GO       ?= go
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo devel)
LDFLAGS  := -s -w -X main.Version=$(VERSION)
PKGS     := ./...
FUZZTIME ?= 30s
JS       := web/client

.PHONY: all build release lambda test test-js vet fmt-check fuzz bench eval serve clean

all: build

## build: a static binary at ./bin/runnel (no cgo)
build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o bin/runnel ./cmd/runnel

## release: static binaries for each of RELEASE_PLATFORMS in dist/release/,
## named runnel-VERSION-OS-ARCH, with their SHA256SUMS
RELEASE_PLATFORMS ?= linux/amd64 linux/arm64 darwin/amd64 darwin/arm64
release:
	rm -rf dist/release && mkdir -p dist/release
	for p in $(RELEASE_PLATFORMS); do \
		os=$${p%/*}; arch=$${p#*/}; \
		GOOS=$$os GOARCH=$$arch VERSION='$(VERSION)' GO='$(GO)' \
			sh deploy/container/build.sh dist/release/runnel-$(VERSION)-$$os-$$arch || exit 1; \
	done
	cd dist/release && sha256sum runnel-* > SHA256SUMS

## lambda: the AWS Lambda package: dist/lambda/bootstrap (linux/arm64) and
## dist/lambda/runnel-lambda.zip; LAMBDA_DB=file bundles a database
lambda:
	GO='$(GO)' VERSION='$(VERSION)' bash deploy/lambda/build.sh $(if $(LAMBDA_DB),--db '$(LAMBDA_DB)')

## test: every test (formatting, vet, race-enabled unit and end-to-end tests),
## the stream tests again with every stream parked at its first wait (driven
## by events, then each in a goroutine of its own), again so parked with the
## CPU counted as saturated (tokens wait to share writes), and again with
## runs kept in Redis (streams not parked, then parked), then the JS
## client's and the page's tests
test: fmt-check vet
	$(GO) test -race -count=1 -timeout 20m $(PKGS)
	bash scripts/ensure-redis.sh
	RUNNEL_TEST_PARK=1 $(GO) test -race -count=1 -timeout 10m ./http/
	RUNNEL_TEST_PARK=goroutine $(GO) test -race -count=1 -timeout 10m ./http/
	RUNNEL_TEST_PARK=1 RUNNEL_TEST_SATURATED=1 $(GO) test -race -count=1 -timeout 10m ./http/
	RUNNEL_TEST_RUNS=redis $(GO) test -race -count=1 -timeout 10m ./http/
	RUNNEL_TEST_RUNS=redis RUNNEL_TEST_PARK=1 $(GO) test -race -count=1 -timeout 10m ./http/
	$(MAKE) test-js

## test-js: the JS client in Node (node --test), then the page and the client in
## Debian's Chromium driven by playwright-core; both against Go servers the
## tests build and start. Screenshots go to web/testoutput/.
test-js: $(JS)/node_modules/.package-lock.json
	cd $(JS) && npm test
	bash scripts/ensure-chromium.sh
	cd $(JS) && npm run test:browser

# npm ci installs the locked test tools when the lock is newer than them.
$(JS)/node_modules/.package-lock.json: $(JS)/package-lock.json
	cd $(JS) && npm ci --no-audit --no-fund

vet:
	$(GO) vet $(PKGS)

fmt-check:
	@out=$$(gofmt -l $$(git ls-files --cached --others --exclude-standard '*.go' 2>/dev/null || find . -name '*.go' -not -path '*/node_modules/*')); \
	if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

## fuzz: run each fuzz target for FUZZTIME. Minimising each new input is
## capped at 1s: Go's default (60s an input) can stall a short run.
FUZZ := $(GO) test -run='^$$' -fuzztime=$(FUZZTIME) -fuzzminimizetime=1s
fuzz:
	$(FUZZ) -fuzz=FuzzReader ./http/
	$(FUZZ) -fuzz=FuzzSSEReader ./http/
	$(FUZZ) -fuzz=FuzzMatchExpr ./sqlite/
	$(FUZZ) -fuzz=FuzzParseQuestion .
	$(FUZZ) -fuzz=FuzzAppendString .
	$(FUZZ) -fuzz=FuzzParse ./markdown/
	$(FUZZ) -fuzz=FuzzGenerate ./extractive/

## bench: the Go benchmarks (see docs/benchmarks.md for the load tool)
bench:
	$(GO) test -run='^$$' -bench=. -benchmem $(PKGS)

## eval: answer quality on Debian's debian-faq, git-doc and docker-doc
## (downloaded and unpacked into eval/.cache, not installed); see
## docs/quality.md. EVAL_ARGS adds flags or question files.
eval:
	bash eval/fetch.sh
	$(GO) run ./eval $(EVAL_ARGS)

serve:
	$(GO) run ./cmd/runnel serve

clean:
	rm -rf bin dist

# --- The container image (Dockerfile, deploy/container/build.sh) ----------
# See docs/operations.md for several platforms at once (docker buildx).
IMAGE ?= runnel
.PHONY: image

## image: the container image $(IMAGE):$(VERSION) for this machine's platform
image:
	docker build --build-arg VERSION=$(VERSION) -t $(IMAGE):$(VERSION) .
