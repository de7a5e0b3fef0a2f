# Ferry's build. `make help` lists the targets.
GO        ?= go
BIN       ?= bin/ferry
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS   := -s -w -X github.com/ferryserve/ferry/internal/cli.Version=$(VERSION)
GOBIN     := $(shell $(GO) env GOPATH)/bin
PROTOC_GEN_GO      := google.golang.org/protobuf/cmd/protoc-gen-go@v1.36.12
PROTOC_GEN_GO_GRPC := google.golang.org/grpc/cmd/protoc-gen-go-grpc@v1.6.2

.PHONY: help build image test test-short fmt-check vet demo bench bench-go proto fuzz tools clean

help: ## list targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

build: ## build bin/ferry (static, no cgo)
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/ferry

image: ## build the container image ferry:dev from the Dockerfile (IMAGE=name:tag to change it; needs docker)
	docker build --build-arg VERSION=$(VERSION) -t $(or $(IMAGE),ferry:dev) .

test: fmt-check vet ## the whole test suite (race detector on; fuzz seed corpora included)
	$(GO) test -race -count=1 -timeout 15m ./...

test-short: ## tests without the race detector
	$(GO) test -count=1 ./...

fmt-check: ## fail if gofmt would change a file
	@out=$$(gofmt -l $$(git ls-files '*.go' | grep -v '\.pb\.go$$')); \
	if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

vet: ## go vet
	$(GO) vet ./...

demo: build ## serve the example models and show a curl and a grpcurl call
	./scripts/demo.sh

bench: build ## load test V1/V2 REST and V2 gRPC against bare handlers (see docs/benchmarks.md)
	./scripts/bench.sh

bench-go: ## Go micro-benchmarks with -benchmem
	$(GO) test -run='^$$' -bench=. -benchmem -count=1 ./internal/...

proto: ## regenerate api/inference from its .proto (needs protoc: apt-get install protobuf-compiler)
	$(GO) install $(PROTOC_GEN_GO)
	$(GO) install $(PROTOC_GEN_GO_GRPC)
	PATH="$(GOBIN):$$PATH" protoc --go_out=. --go_opt=module=github.com/ferryserve/ferry \
		--go-grpc_out=. --go-grpc_opt=module=github.com/ferryserve/ferry api/inference/grpc_predict_v2.proto

fuzz: ## run every fuzz target for 20 s each
	@for pkg in $$($(GO) list ./internal/...); do \
		for f in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz'); do \
			echo "== $$pkg $$f"; $(GO) test -run='^$$' -fuzz="^$$f$$" -fuzztime=20s $$pkg || exit 1; \
		done; \
	done

tools: ## install the load and gRPC tools used by demo and bench
	$(GO) install github.com/fullstorydev/grpcurl/cmd/grpcurl@v1.9.4
	$(GO) install github.com/rakyll/hey@v0.1.5
	$(GO) install github.com/bojand/ghz/cmd/ghz@v0.93.0
	$(GO) install golang.org/x/perf/cmd/benchstat@latest

clean:
	rm -rf bin
