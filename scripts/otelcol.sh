#!/usr/bin/env bash
# Builds the OpenTelemetry Collector the tests send through (OTLP receiver,
# otlphttp exporter: tools/otelcol, a module of its own whose go.sum pins
# every dependency) from the Go module proxy and caches the binary; prints
# its path. About a minute on 2 cores the first time.
set -euo pipefail
cd "$(dirname "$0")/../tools/otelcol"

cache=${FLOWG_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/flowg-server}
sum=$(cat go.mod go.sum main.go | sha256sum | cut -c1-16)
bin=$cache/otelcol-$sum/otelcol-flowg

if [ -x "$bin" ] && "$bin" --version >/dev/null 2>&1; then
  echo "$bin"
  exit 0
fi
echo "otelcol.sh: building the OpenTelemetry Collector (about a minute the first time)" >&2
mkdir -p "$(dirname "$bin")"
CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$bin.tmp" . >&2
mv "$bin.tmp" "$bin"
echo "$bin"
