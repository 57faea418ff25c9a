# Ferry's build, test and run targets. `make setup` installs what a fresh
# Debian machine lacks; `make test` is the unit and integration suite;
# `make e2e` (from hack/env.mk) is the end-to-end suite on the local
# environment.

GO          ?= go
VERSION     ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
LDFLAGS     := -X main.version=$(VERSION)
STATICCHECK := honnef.co/go/tools/cmd/staticcheck@v0.8.2
BENCH       ?= .

.PHONY: setup build test lint bench fmt

# setup installs Debian packages, then builds (or reuses from ~/.cache/ferry)
# the Kubernetes binaries that the tier-2 tests run as a real API server.
setup:
	bash hack/setup.sh
	bash hack/k8s-build.sh >/dev/null

build:
	$(GO) build -ldflags "$(LDFLAGS)" -o bin/ferry ./cmd/ferry

fmt:
	gofmt -w $$(git ls-files '*.go')

lint:
	@unformatted=$$(gofmt -l $$(git ls-files '*.go')); \
	if [ -n "$$unformatted" ]; then echo "gofmt needed on:"; echo "$$unformatted"; exit 1; fi
	$(GO) vet ./...
	$(GO) run $(STATICCHECK) ./...

# test runs the main module's tests, then those of the two nested modules
# (the registry program and the builder tool), which go test ./... skips.
test: lint
	$(GO) test -count=1 ./...
	cd hack/registry && GOWORK=off $(GO) vet ./... && GOWORK=off $(GO) test -count=1 ./...
	cd fixtures/builder && GOWORK=off $(GO) vet ./... && GOWORK=off $(GO) test -count=1 ./...

# Benchmarks run against a private PostgreSQL; results go to docs/benchmarks.md by hand.
bench:
	$(GO) test -run '^$$' -bench '$(BENCH)' -benchmem ./...

-include hack/env.mk
-include fixtures/fixtures.mk
