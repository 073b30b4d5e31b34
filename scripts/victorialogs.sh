#!/usr/bin/env bash
# Builds VictoriaLogs, the reference the query and storage benchmarks run
# the same data and questions against, from the Go module proxy (its own
# go.mod and go.sum pin every dependency) and caches the binary; prints its
# path. About two minutes on 2 cores the first time.
set -euo pipefail
version=${VICTORIALOGS_VERSION:-v1.52.2}
cache=${FLOWG_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/flowg-server}
bin=$cache/victorialogs-$version/victoria-logs

if [ -x "$bin" ] && "$bin" -version >/dev/null 2>&1; then
  echo "$bin"
  exit 0
fi
echo "victorialogs.sh: building VictoriaLogs $version (about two minutes the first time)" >&2
mkdir -p "$(dirname "$bin")"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
CGO_ENABLED=0 GOBIN=$tmp go install -trimpath -ldflags "-s -w" "github.com/VictoriaMetrics/VictoriaLogs/app/victoria-logs@$version" >&2
mv "$tmp/victoria-logs" "$bin"
echo "$bin"
