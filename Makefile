# Skiff: make build | test | demo | fuzz | bench | update
GO ?= go
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -s -w -X github.com/skiffhq/skiff/internal/cli.Version=$(VERSION)

.PHONY: build test demo fuzz bench update clean

build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags "$(LDFLAGS)" -o bin/skiff ./cmd/skiff

test:
	bash hack/test.sh

demo: build
	bash hack/demo.sh

fuzz:
	bash hack/fuzz.sh $(FUZZTIME)

bench:
	bash bench/run.sh

update:
	$(GO) test ./internal/spec -run JSONSchemaFileInSync -update
	$(GO) test ./internal/convert -run Golden -update
	$(GO) test ./internal/mirror -run Golden -update
	$(GO) test ./internal/cli -run CLIReference -update

clean:
	rm -rf bin
