# Consul agent settings that flowg-server's discovery relies on. Merge into
# the agent configuration (e.g. /etc/consul.d/flowg.hcl).

# DNS on 8600 on the host's address, so that containers (Nomad bridge
# networking) can reach it; flowg-server asks it with
# --cluster-dns-server <host IP>:8600.
addresses {
  dns = "0.0.0.0"
}
ports {
  dns = 8600
}

dns_config {
  # Answer SRV lookups of flowg.service.consul from any server, and let
  # clients cache the answer for 5 s: flowg-server asks again when the TTL
  # runs out (at least every second), so 5 s bounds how long a new node
  # waits to be found.
  allow_stale = true
  service_ttl = {
    "flowg" = "5s"
  }
  # Only passing instances.
  only_passing = true
}
