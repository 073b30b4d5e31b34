# Consul service definition for a flowg-server node run outside Nomad and
# without --cluster-consul-url (which registers the node by itself). Put it
# in the agent's config directory (e.g. /etc/consul.d/) on the node's host
# and reload the agent. Peers then find the node with
#   --cluster-dns-name flowg.service.consul --cluster-dns-server 127.0.0.1:8600
service {
  # One ID per node: the node's --cluster-node-id.
  id   = "flowg-node0"
  name = "flowg"
  tags = ["mgmt"]
  # The management endpoint: health, metrics and gossip.
  address = "10.0.0.10"
  port    = 9113
  meta {
    node-id  = "flowg-node0"
    endpoint = "http://10.0.0.10:9113"
    http     = "10.0.0.10:5080"
    syslog   = "10.0.0.10:5514"
  }
  check {
    id       = "flowg-node0-health"
    name     = "flowg-server management /health"
    http     = "http://127.0.0.1:9113/health"
    interval = "5s"
    timeout  = "2s"
    deregister_critical_service_after = "1m"
  }
}
