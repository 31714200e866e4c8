# asi1d: build, test, run and benchmark. Every target prepares the machine
# first (scripts/env.sh: apt headers, miniaudio link, cgo flags).
#
#   make run                 build and serve the bundled tiny model (models/stories260K)
#   make run MODEL=x.gguf    serve another model
#   make test                the whole suite, integration tests included (what
#                            CI runs; includes tidy-check)
#   make test-fast           the fast, deterministic tests (go test ./...):
#                            the developer's lane after each change
#   make bench               benchmarks
#   make build CPU_TARGET=x86-64-v3   a build for another CPU (-march value)
#   make build ARCH=arm64    cross-build for arm64 Linux (Debian's cross g++)
#   make release             the portable release: one build per CPU variant
#                            and a launcher that picks one at start, in dist/
#   make build-matrix        link for x86-64-v3, sapphirerapids and arm64, and
#                            run the arm64 goldens under qemu (CI runs it)
#   make build GPU=cuda      also the CUDA backend: bin/asi1d + lib/ollama/
#                            (needs nvcc, CMake, Ninja; CUDA_ARCHITECTURES=90
#                            for one chip, default native or 75;80;86;89;90)
#   make gpu-check-prepare   what scripts/gpu-check.sh needs, into .gpu-check/

SHELL := /bin/bash
MODEL ?= models/stories260K/stories260K.gguf
ARGS ?=
CPU_TARGET ?=
ARCH ?=
GPU ?=
CUDA_ARCHITECTURES ?=
GPU_JOBS ?=
VERSION ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
ENV = set -euo pipefail; eval "$$(ASI1D_CPU_TARGET=$(CPU_TARGET) ASI1D_GOARCH=$(ARCH) bash scripts/env.sh)";
PURE = ./sampler/... ./tokenizer/... ./models/... ./server/... ./engine ./engine/scheduler/... ./engine/enginetest/... ./scripts/... ./engine/threads/... ./engine/sessions/... ./cmd/asi1d-launcher/...

.PHONY: setup build build-gpu build-matrix release gpu-check-prepare test test-fast tidy-check run bench fuzz clean

setup:
	@$(ENV) go mod download && echo "setup: ok"

build: setup
	@$(ENV) go build -ldflags "-X main.version=$(VERSION)" -o bin/asi1d ./cmd/asi1d
	@echo "built bin/asi1d"
	@case "$(GPU)" in \
	"") ;; \
	cuda) $(MAKE) --no-print-directory build-gpu ;; \
	*) echo "GPU=$(GPU): only GPU=cuda is supported" >&2; exit 2 ;; \
	esac

build-matrix: setup
	@bash scripts/build-matrix.sh

release: setup
	@bash scripts/release.sh $(if $(ARCH),--arch $(ARCH)) --version $(VERSION)

# The CUDA backend from the pinned module's ggml sources, installed beside
# bin/ as lib/ollama/ (scripts/build-gpu.sh explains the layout).
build-gpu:
	@$(ENV) bash scripts/build-gpu.sh --src "$$(go list -m -f '{{.Dir}}' github.com/ollama/ollama)" --prefix . \
		$(if $(CUDA_ARCHITECTURES),--arch "$(CUDA_ARCHITECTURES)") $(if $(GPU_JOBS),--jobs $(GPU_JOBS))

# Everything scripts/gpu-check.sh needs on a machine without Go or network.
gpu-check-prepare:
	@$(ENV) bash scripts/gpu-check.sh prepare

# go.mod and go.sum stay as `go mod tidy` leaves them: nothing unused is
# required, nothing used is missing (go mod tidy -diff changes no file).
tidy-check:
	@go mod tidy -diff || { echo "tidy-check: run go mod tidy" >&2; exit 1; }

# Two lanes. `go test ./...` runs the fast, deterministic tests; the tests
# that start real components (nginx, Redis, Chromium, node, a network
# namespace), the soak, the fleet and the fresh-clone test carry
# //go:build integration and run with -tags integration (internal/testutil).
# The pure-Go packages build and test without cgo; the rest needs the engine.
test: setup tidy-check
	@$(ENV) CGO_ENABLED=0 go vet $(PURE) && CGO_ENABLED=0 go test -count=1 -timeout 10m $(PURE)
	@$(ENV) go vet ./... && go vet -tags integration ./... && go test -race -count=1 -timeout 30m -tags integration ./...

# The developer's lane: the fast tests only, no race detector.
test-fast: setup
	@$(ENV) go test -count=1 -timeout 10m ./...

run: build
	@if [ "$(MODEL)" = models/stories260K/stories260K.gguf ]; then \
		echo "run: serving the bundled 1 MB demo model (it writes children's stories, it is no chat model)."; \
		echo "run: a real chat model: ./bin/asi1d models pull --models-dir ~/models hf.co/bartowski/Qwen2.5-1.5B-Instruct-GGUF:Q4_K_M"; \
		echo "run:                    ./bin/asi1d serve --models-dir ~/models"; \
	fi
	./bin/asi1d serve --model $(MODEL) $(ARGS)

bench: setup
	@$(ENV) go test -run '^$$' -bench . -benchmem ./sampler/ ./engine/... ./models/

fuzz: setup
	@$(ENV) for t in FuzzDetokenizer FuzzStopMatcher; do go test -run '^$$' -fuzz $$t -fuzztime 60s ./tokenizer/ || exit 1; done; \
	for t in FuzzThoughtParser FuzzToolCallHermes FuzzToolCallLlama3 FuzzToolCallMistral FuzzToolJSONScanner; do go test -run '^$$' -fuzz $$t -fuzztime 60s ./models/ || exit 1; done; \
	go test -run '^$$' -fuzz FuzzDecodeChatRequest -fuzztime 60s ./server/

clean:
	rm -rf bin lib .build .gpu-check dist
