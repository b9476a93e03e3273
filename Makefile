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

.PHONY: deps
deps: ## install the Debian packages the build and the tests need (only those missing)
	scripts/deps.sh

.PHONY: build
build: ## build bin/shoal
	$(GO) build -o $(BIN) ./cmd/shoal

# Integration tests make network namespaces and start daemons: they need
# root, and without it they skip (under CI=true they fail instead). They run
# the binary that `build` made rather than building their own.
.PHONY: test
test: deps build check ## gofmt, vet, generated code, then unit and integration tests (integration tests need root)
	SHOAL_BIN=$(abspath $(BIN)) $(GO) test -count=1 -p 1 -timeout 60m ./...

.PHONY: check
check: ## gofmt, go vet, and generated code up to date
	@unformatted=$$(gofmt -l .); \
	if [[ -n "$$unformatted" ]]; then echo "gofmt -l: these files need gofmt -w:"; echo "$$unformatted"; exit 1; fi
	$(GO) vet ./...
	$(MAKE) --no-print-directory generate
	@git diff --exit-code -- api/ || { echo "api/: the generated code is out of date: run make generate and commit it"; exit 1; }

.PHONY: bench
bench: build ## every benchmark: Go micro-benchmarks, then failover, create, reschedule and scale on real daemons
	$(GO) test -count=1 -run '^$$' -bench . ./scheduler/ ./manager/...
	$(MAKE) --no-print-directory bench-failover bench-create bench-reschedule bench-scale

.PHONY: bench-failover
bench-failover: ## measure failover time on real daemons (BenchmarkFailover, one run)
	$(GO) test -count=1 -run '^$$' -bench BenchmarkFailover -benchtime 1x -timeout 20m ./integration/

.PHONY: bench-create
bench-create: ## 8 nginx replicas on 4 nodes vs the containerd floor
	$(GO) test -count=1 -run '^$$' -bench BenchmarkCreate -benchtime 1x -timeout 20m ./integration/

.PHONY: bench-reschedule
bench-reschedule: ## kill -9 a worker / the leader's node running tasks, time until all replicas run again
	$(GO) test -count=1 -run '^$$' -bench BenchmarkReschedule -benchtime 1x -timeout 30m ./integration/

.PHONY: bench-scale
bench-scale: ## 1,000 simulated nodes and a 10,000-replica service (prints time and peak memory)
	$(GO) test -count=1 -run '^$$' -bench BenchmarkScale -benchtime 1x -timeout 30m ./integration/scale/

.PHONY: demo
demo: deps build ## a playground (3 managers, 1 worker, each in a network namespace) running nginx x8 (needs root)
	scripts/demo.sh

.PHONY: demo-down
demo-down: ## remove the playground: daemons, containers, namespaces
	$(BIN) playground down

# install puts shoal on a machine of your own: the runtime packages, the
# binary and a systemd unit. DESTDIR and PREFIX work as usual.
PREFIX ?= /usr/local
.PHONY: install
install: build ## install containerd, runc and CNI plugins (apt), $(PREFIX)/bin/shoal and a systemd unit
	@if [[ -z "$(DESTDIR)" ]]; then scripts/deps.sh runtime; fi
	install -D -m 0755 $(BIN) $(DESTDIR)$(PREFIX)/bin/shoal
	install -d $(DESTDIR)/etc/systemd/system
	sed 's|/usr/local/bin/shoal|$(PREFIX)/bin/shoal|' contrib/systemd/shoal.service > $(DESTDIR)/etc/systemd/system/shoal.service
	@echo "installed; now: systemctl daemon-reload && systemctl enable --now containerd shoal"

.PHONY: clean
clean: ## remove build output
	rm -rf bin/
