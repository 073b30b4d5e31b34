#!/usr/bin/env bash
# Builds the Consul agent from the Go module proxy (Debian has no package)
# and caches the binary; prints its path. Used by `make consul-path`, the
# tests and CI. The first build takes 5-10 minutes on 2 cores.
set -euo pipefail

version=${CONSUL_VERSION:-1.20.6}
cache=${FLOWG_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/flowg-server}
bin=$cache/consul-$version/consul

if [ -x "$bin" ] && "$bin" version >/dev/null 2>&1; then
  echo "$bin"
  exit 0
fi

mkdir -p "$cache"
work=$(mktemp -d "$cache/consul-build.XXXXXX")
trap 'chmod -R u+w "$work" 2>/dev/null; rm -rf "$work"' EXIT

dir=$(go mod download -json "github.com/hashicorp/consul@v$version" | sed -n 's/^\s*"Dir": "\(.*\)",$/\1/p')
[ -n "$dir" ] || { echo "consul.sh: cannot download github.com/hashicorp/consul@v$version" >&2; exit 1; }
cp -r "$dir/." "$work/src"
chmod -R u+w "$work/src"
cd "$work/src"
# The module's replace directives point into its own source tree (api, sdk,
# ...), which the module zip does not hold; take those from the proxy instead.
for r in $(go mod edit -json | sed -n 's/^\s*"Path": "\(github.com\/hashicorp\/consul\/[^"]*\)".*/\1/p' | sort -u); do
  go mod edit -dropreplace="$r"
done
echo "consul.sh: building consul $version (5-10 minutes the first time)" >&2
GONOSUMDB=github.com/hashicorp/consul GOFLAGS=-mod=mod CGO_ENABLED=0 \
  go build -trimpath -ldflags "-s -w" -o "$work/consul" . >&2
mkdir -p "$(dirname "$bin")"
mv "$work/consul" "$bin"
"$bin" version >&2
echo "$bin"
