# asi1d: build, test, run and benchmark. Every target prepares the machine
# first (scripts/env.sh: apt headers, miniaudio link, cgo flags).
#
#   make run                 build and serve ../shared/models/stories260K.gguf
#   make run MODEL=x.gguf    serve another model
#   make test                the test suite (what CI runs)
#   make bench               benchmarks
#   make build CPU_TARGET=x86-64-v3   a portable build (release images)

SHELL := /bin/bash
MODEL ?= ../shared/models/stories260K.gguf
ARGS ?=
CPU_TARGET ?= native
VERSION ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
ENV = set -euo pipefail; eval "$$(ASI1D_CPU_TARGET=$(CPU_TARGET) bash scripts/env.sh)";
PURE = ./sampler/... ./tokenizer/... ./models/... ./server/... ./engine ./engine/scheduler/... ./engine/enginetest/... ./engine/threads/...

.PHONY: setup build test test-pure run bench fuzz clean

setup:
	@$(ENV) go mod download && echo "setup: ok"

build: setup
	@$(ENV) go build -ldflags "-X main.version=$(VERSION)" -o bin/asi1d ./cmd/asi1d
	@echo "built bin/asi1d"

# The pure-Go packages build and test without cgo; the rest needs the engine.
test: setup
	@$(ENV) CGO_ENABLED=0 go vet $(PURE) && CGO_ENABLED=0 go test -count=1 $(PURE)
	@$(ENV) go vet ./... && go test -race -count=1 ./...

run: build
	./bin/asi1d serve --model $(MODEL) $(ARGS)

bench: setup
	@$(ENV) go test -run '^$$' -bench . -benchmem ./sampler/ ./engine/... ./models/

fuzz: setup
	@$(ENV) for t in FuzzDetokenizer FuzzStopMatcher; do go test -run '^$$' -fuzz $$t -fuzztime 60s ./tokenizer/ || exit 1; done; \
	for t in FuzzThoughtParser FuzzToolCallHermes FuzzToolCallLlama3 FuzzToolCallMistral FuzzToolJSONScanner; do go test -run '^$$' -fuzz $$t -fuzztime 60s ./models/ || exit 1; done; \
	go test -run '^$$' -fuzz FuzzDecodeChatRequest -fuzztime 60s ./server/

clean:
	rm -rf bin .build
