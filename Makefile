# flowg-server: make run | make test | make check | make bench | make fuzz
GO          ?= go
STATICCHECK ?= honnef.co/go/tools/cmd/staticcheck@v0.8.2
FUZZTIME    ?= 30s

.PHONY: build run test check fmt vet staticcheck tidy deps bench fuzz clean consul-path ui ui-check

build:
	$(GO) build -o bin/flowg-server ./cmd/flowg-server

run:
	$(GO) run ./cmd/flowg-server

# Every test: unit, multi-node and end-to-end, race detector on. The first
# run installs dnsmasq and logger (as root, from Debian's packages) and
# builds the Consul agent (5-10 minutes, then cached).
test:
	@env=$$(bash scripts/test-deps.sh) && export $$env && \
	$(GO) test -race -count=1 -timeout 45m ./...

check: fmt vet staticcheck tidy deps ui-check

fmt:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet ./...

staticcheck:
	$(GO) run $(STATICCHECK) ./...

tidy:
	$(GO) mod tidy -diff

deps:
	$(GO) test -count=1 -run TestDependencyRule .

# Every benchmark; each prints its figures. The parsers' are timed loops;
# the others do a fixed amount of work once (-benchtime 1x).
bench:
	$(GO) test -run '^$$' -bench '^BenchmarkParse(5424)?$$' -benchtime 2s ./syslog
	@env=$$(bash scripts/test-deps.sh) && export $$env && \
	$(GO) test -run '^$$' -bench '^Benchmark(IngestVsBadger|IndexedQuery|SyslogUDP|SyslogTCP|ConsulJoin|DNSJoin|Replication|ClusterIngest|Cluster50|Memory|Connect|Shippers|Questions|UI)$$' -benchtime 1x -timeout 60m ./...

# A short run of every fuzz target (FUZZTIME each).
fuzz:
	$(GO) test -run '^$$' -fuzz '^FuzzParse$$' -fuzztime $(FUZZTIME) ./filter
	$(GO) test -run '^$$' -fuzz '^FuzzParseFuncs$$' -fuzztime $(FUZZTIME) ./stats
	$(GO) test -run '^$$' -fuzz '^FuzzBlock$$' -fuzztime $(FUZZTIME) ./store
	$(GO) test -run '^$$' -fuzz '^FuzzParseStruct$$' -fuzztime $(FUZZTIME) ./httpapi
	$(GO) test -run '^$$' -fuzz '^FuzzParseText$$' -fuzztime $(FUZZTIME) ./httpapi
	$(GO) test -run '^$$' -fuzz '^FuzzLoki$$' -fuzztime $(FUZZTIME) ./httpapi
	$(GO) test -run '^$$' -fuzz '^FuzzLokiLabels$$' -fuzztime $(FUZZTIME) ./httpapi
	$(GO) test -run '^$$' -fuzz '^FuzzOTLP$$' -fuzztime $(FUZZTIME) ./httpapi
	$(GO) test -run '^$$' -fuzz '^FuzzBulk$$' -fuzztime $(FUZZTIME) ./httpapi
	$(GO) test -run '^$$' -fuzz '^FuzzSnappy$$' -fuzztime $(FUZZTIME) ./httpapi
	$(GO) test -run '^$$' -fuzz '^FuzzQueryTime$$' -fuzztime $(FUZZTIME) ./httpapi
	$(GO) test -run '^$$' -fuzz '^FuzzParse$$' -fuzztime $(FUZZTIME) ./syslog
	$(GO) test -run '^$$' -fuzz '^FuzzParse5424$$' -fuzztime $(FUZZTIME) ./syslog
	$(GO) test -run '^$$' -fuzz '^FuzzFramer$$' -fuzztime $(FUZZTIME) ./syslog
	$(GO) test -run '^$$' -fuzz '^FuzzDecodeAnswer$$' -fuzztime $(FUZZTIME) ./replica
	$(GO) test -run '^$$' -fuzz '^FuzzVersions$$' -fuzztime $(FUZZTIME) ./replica
	$(GO) test -run '^$$' -fuzz '^FuzzVerifyHeaders$$' -fuzztime $(FUZZTIME) ./serfnet

clean:
	rm -rf bin data

# Path of the Consul agent the discovery tests use, built once and cached.
consul-path:
	@bash scripts/consul.sh

# The web UI: bundle ui/ into httpapi/ui/ (esbuild's Go API, no Node.js).
ui:
	cd tools/uibuild && $(GO) run .

# Fails when httpapi/ui/ is not the build of ui/.
ui-check:
	cd tools/uibuild && $(GO) run . -check
