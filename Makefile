# shoal: a Go re-implementation of Docker Swarm mode's manager and worker roles.
SHELL := /bin/bash
GO ?= go
BIN := bin/shoal

.PHONY: help
help: ## list the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-16s %s\n", $$1, $$2}'

.PHONY: generate
generate: ## regenerate the protobuf code from api/shoal.proto
	protoc -I api --go_out=api --go_opt=paths=source_relative \
		--go-grpc_out=api --go-grpc_opt=paths=source_relative api/shoal.proto
