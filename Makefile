# Fornax: the two commands a new machine needs are `make run` and `make test`.
GO ?= go
BENCH_PKGS = ./internal/queue/... ./internal/imagebuild/... ./functions/... ./tests/...

.PHONY: run test test-deps vet bench build

## run: Fornax locally on its embedded defaults (127.0.0.1:7099, data in ./.fornax)
run:
	$(GO) run ./local

## test: install what the tests need, then vet and run every test
test: test-deps vet
	$(GO) test -race -count=1 -timeout 30m ./...

test-deps:
	./scripts/test-deps.sh

vet:
	$(GO) vet ./...

build:
	$(GO) build ./...

## bench: the benchmarks behind docs/BENCHMARKS.md
bench:
	$(GO) test -run '^$$' -bench . -benchmem -benchtime 2s $(BENCH_PKGS)
