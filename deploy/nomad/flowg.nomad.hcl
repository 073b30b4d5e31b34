# Three flowg-server allocations that Nomad registers in Consul (service
# "flowg" on the management port, checked on /health) and that find each
# other through Consul DNS SRV records (flowg.service.consul).
#
# The cookie comes from a Nomad variable, never from this file:
#   nomad var put nomad/jobs/flowg cookie=$(openssl rand -hex 32)
#   nomad job run deploy/nomad/flowg.nomad.hcl
# (With Vault, swap the nomadVar template for
#  {{ with secret "kv/data/flowg" }}{{ .Data.data.cookie }}{{ end }}.)
#
# Consul DNS must answer on each client at the address below
# (deploy/consul/agent.hcl: ports { dns = 8600 }).
#
# The node is a Consul Connect native service (--consul-connect): Nomad
# registers its API and syslog ports with connect { native = true } and
# hands the task the local agent's address (CONSUL_HTTP_ADDR), from which
# the node takes its mesh certificates; the management port then speaks
# mutual TLS between nodes. Mesh clients reach the API through an upstream
# flowg-api, with no sidecar in front of the node. Allow them with
# intentions (consul intention create -allow app flowg-api) and grant their
# service roles (see the README's Service mesh section).

variable "image" {
  type    = string
  default = "flowg-server:latest"
}

variable "datacenters" {
  type    = list(string)
  default = ["dc1"]
}

job "flowg" {
  datacenters = var.datacenters
  type        = "service"

  group "flowg" {
    count = 3

    # One node per client host.
    constraint {
      operator = "distinct_hosts"
      value    = "true"
    }

    # Replace one node at a time, and only once the new one is healthy.
    update {
      max_parallel     = 1
      health_check     = "checks"
      min_healthy_time = "10s"
      healthy_deadline = "3m"
    }

    network {
      mode = "bridge"
      port "http" {
        to = 5080
      }
      port "mgmt" {
        to = 9113
      }
      port "syslog" {
        to = 5514
      }
      port "connect-api" {
        to = 5443
      }
      port "connect-syslog" {
        to = 6514
      }
    }

    # Kept on the same client across restarts and updates, moved with the
    # allocation otherwise: the node ID and data survive.
    ephemeral_disk {
      sticky  = true
      migrate = true
      size    = 10240
    }

    # Peers discover this service through Consul DNS; its check gates it.
    service {
      name         = "flowg"
      port         = "mgmt"
      address_mode = "host"
      tags         = ["mgmt"]
      meta {
        node-id = "flowg-${NOMAD_ALLOC_INDEX}"
      }
      # https: the management port presents the node's mesh certificate,
      # which names a service, not this address.
      check {
        type            = "http"
        protocol        = "https"
        tls_skip_verify = true
        path            = "/health"
        interval        = "5s"
        timeout         = "2s"
      }
    }

    # The API and syslog inside the Consul service mesh: Connect native, the
    # node does the mesh's mutual TLS itself.
    service {
      name = "flowg-api"
      port = "connect-api"
      task = "flowg-server"
      connect {
        native = true
      }
    }
    service {
      name = "flowg-syslog"
      port = "connect-syslog"
      task = "flowg-server"
      connect {
        native = true
      }
    }

    task "flowg-server" {
      driver = "docker"

      config {
        image = var.image
        args = [
          "--cluster-node-id", "flowg-${NOMAD_ALLOC_INDEX}",
          "--cluster-advertise", "${NOMAD_HOST_ADDR_mgmt}",
          "--cluster-dns-name", "flowg.service.consul",
          "--cluster-dns-server", "${attr.unique.network.ip-address}:8600",
          "--cluster-dns-interval", "10s",
          "--auth-dir", "${NOMAD_ALLOC_DIR}/data/auth",
          "--log-dir", "${NOMAD_ALLOC_DIR}/data/logs",
          "--config-dir", "${NOMAD_ALLOC_DIR}/data/config",
          "--cluster-state-dir", "${NOMAD_ALLOC_DIR}/data/state",
          "--consul-connect",
          # Nomad registers the services above; the agent serves the mesh's
          # certificates only.
          "--cluster-consul-register=false",
        ]
      }

      # The cookie, from the Nomad variable at nomad/jobs/flowg.
      template {
        destination = "${NOMAD_SECRETS_DIR}/cookie.env"
        env         = true
        change_mode = "restart"
        data        = <<-EOT
          FLOWG_CLUSTER_COOKIE={{ with nomadVar "nomad/jobs/flowg" }}{{ .cookie }}{{ end }}
        EOT
      }

      env {
        FLOWG_LOG_FORMAT  = "json"
        FLOWG_HTTP_BIND   = ":5080"
        FLOWG_MGMT_BIND   = ":9113"
        FLOWG_SYSLOG_BIND = ":5514"
        FLOWG_CONSUL_CONNECT_API_BIND    = ":5443"
        FLOWG_CONSUL_CONNECT_SYSLOG_BIND = ":6514"
      }

      kill_timeout = "40s"
      kill_signal  = "SIGTERM"

      resources {
        cpu    = 1000
        memory = 1024
      }
    }
  }
}
