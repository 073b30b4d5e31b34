#!/usr/bin/env bash
# Sets up what the tests run against on a fresh machine and prints the
# environment they need: util-linux logger (bsdutils) and Python's
# logging.handlers.SysLogHandler (python3) send syslog, dnsmasq
# serves SRV records and ip (iproute2) makes the network namespaces of the
# partition test, and Chromium runs the web UI's browser tests (driven
# headless over the DevTools protocol by chromedp), all from Debian's
# packages (and curl, which the browser test hands a token made in the UI); the Consul agent and the
# OpenTelemetry Collector are built from the Go module proxy by
# scripts/consul.sh and scripts/otelcol.sh and cached.
set -euo pipefail
cd "$(dirname "$0")/.."

export PATH=$PATH:/usr/sbin:/sbin
need=()
command -v logger >/dev/null || need+=(bsdutils)
command -v dnsmasq >/dev/null || need+=(dnsmasq-base)
command -v ip >/dev/null || need+=(iproute2)
command -v python3 >/dev/null || need+=(python3)
command -v chromium >/dev/null || need+=(chromium)
command -v curl >/dev/null || need+=(curl)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
    echo "test-deps.sh: the tests need ${need[*]}; install them (Debian: apt-get install ${need[*]})" >&2
    exit 1
  fi
  echo "test-deps.sh: installing ${need[*]}" >&2
  apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >&2
fi
echo "FLOWG_CONSUL=$(bash scripts/consul.sh)"
echo "FLOWG_OTELCOL=$(bash scripts/otelcol.sh)"
echo "FLOWG_CHROMIUM=$(command -v chromium)"
echo "PATH=$PATH"
