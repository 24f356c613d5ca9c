# berth — see README.md. `make run` starts berth on embedded defaults;
# `make test` runs every test (Docker required; PostgreSQL used when present).
GO          ?= go
BIN         := bin/berth
STATICCHECK ?= $(shell command -v staticcheck 2>/dev/null || echo $(HOME)/go/bin/staticcheck)
# PostgreSQL for the store and e2e tests: .ci/postgres starts Debian's server
# if it is installed and prints its DSN (empty otherwise: those tests skip,
# or fail under CI=true).
BERTH_TEST_POSTGRES ?= $(shell .ci/postgres 2>/dev/null)
export BERTH_TEST_POSTGRES
# The binary must be static: the proxy image is FROM scratch.
export CGO_ENABLED := 0

.PHONY: all build run test check unit e2e test-dockerd test-deps clean

all: build

build:
	$(GO) build -trimpath -o $(BIN) ./cmd/berth

run: build
	$(BIN) server --data data

## test: formatting, vet, staticcheck, then every test (unit, Docker, PostgreSQL, e2e).
test: check
	$(GO) test -count=1 -timeout 25m ./...

check:
	@unformatted=$$(gofmt -l $$(git ls-files '*.go')); \
	if [ -n "$$unformatted" ]; then echo "gofmt needed:"; echo "$$unformatted"; exit 1; fi
	$(GO) vet ./...
	$(GO) vet -tags dockerrestart ./e2e
	$(STATICCHECK) ./...

unit:
	$(GO) test -count=1 -short ./...

e2e:
	$(GO) test -count=1 -v -timeout 20m ./e2e/...

## test-dockerd: restart the Docker daemon under a live app and check it comes back.
## It stops every container on the machine for a while: run it alone (CI runs it after `make test`).
test-dockerd:
	$(GO) test -count=1 -tags dockerrestart -run TestDockerdRestart -timeout 10m ./e2e/

## test-deps: install and start what the tests need on a Debian machine (as root).
test-deps:
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq git busybox-static postgresql ca-certificates chromium openssh-server
	$(GO) install honnef.co/go/tools/cmd/staticcheck@v0.8.2
	.ci/postgres

clean:
	rm -rf bin

## bench: the benchmark (README, "Performance"): about 8 minutes; BENCH_FLAGS=--quick
## for the one-minute run. Wants Debian's nginx and wrk (apt-get install nginx wrk).
.PHONY: bench
bench:
	@mkdir -p bin
	$(GO) run ./bench --json bin/bench.json $(BENCH_FLAGS)
