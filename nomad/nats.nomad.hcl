# A three-node NATS JetStream cluster for mediajet.
#
# Run from the repository root (the job embeds ./nats.conf):
#
#   nomad var put nomad/jobs/nats \
#     auth_password=… ingest_password=… transcoder_password=… \
#     mailer_password=… submitter_password=… operator_password=… \
#     route_password=… tls_cert=@server.pem tls_key=@server-key.pem tls_ca=@ca.pem
#   nomad job run nomad/nats.nomad.hcl
#
# Every Nomad client that may run a node needs a host volume named
# `nats-data` (client config: host_volume "nats-data" { path = "/srv/nats" }).

variable "image" {
  type    = string
  default = "nats:2.12.8-alpine"
}

job "nats" {
  type = "service"

  group "nats" {
    count = 3

    # One node per machine: losing a machine loses one replica, not quorum.
    constraint {
      operator = "distinct_hosts"
      value    = "true"
    }

    # Replace one node at a time and only once it is healthy, so the
    # cluster never drops below quorum during a rollout.
    update {
      max_parallel     = 1
      min_healthy_time = "30s"
      healthy_deadline = "5m"
      auto_revert      = true
    }

    network {
      port "client" { static = 4222 }
      port "cluster" { static = 6222 }
      port "monitor" { static = 8222 }
      port "exporter" { static = 7777 }
    }

    volume "data" {
      type      = "host"
      source    = "nats-data"
      read_only = false
    }

    service {
      name     = "nats"
      port     = "client"
      provider = "nomad"
      tags     = ["client"]

      check {
        type     = "http"
        port     = "monitor"
        path     = "/healthz?js-enabled-only=true"
        interval = "10s"
        timeout  = "2s"
      }
    }

    service {
      name     = "nats-cluster"
      port     = "cluster"
      provider = "nomad"
    }

    # nats-server's monitoring endpoint speaks JSON; the exporter serves it
    # to Prometheus as metrics.
    service {
      name     = "nats-exporter"
      port     = "exporter"
      provider = "nomad"
      tags     = ["metrics"]
    }

    task "nats" {
      driver = "docker"

      # SIGUSR2 puts the server in lame-duck mode: clients move to the other
      # nodes over lame_duck_duration (30 s) before it exits.
      kill_signal  = "SIGUSR2"
      kill_timeout = "45s"

      config {
        image = var.image
        ports = ["client", "cluster", "monitor"]
        args = [
          "-c", "/local/nats.conf",
          # Stable names: the allocation index survives rescheduling, so a
          # replacement node rejoins as the peer it replaces.
          "-n", "nats-${NOMAD_ALLOC_INDEX}",
        ]
      }

      volume_mount {
        volume      = "data"
        destination = "/data"
      }

      # The repository's production configuration with the store on the
      # persistent volume, and the cluster block again with routes to every
      # registered node (a later key replaces the earlier one). Routes are
      # reloadable: when nodes move, SIGHUP updates them without a restart,
      # and nats-server learns the rest of the mesh from any one route.
      template {
        error_on_missing_key = true
        destination          = "local/nats.conf"
        change_mode          = "signal"
        change_signal        = "SIGHUP"
        data                 = <<-EOT
          ${replace(file("nats.conf"), "./data/nats/jetstream", "/data/jetstream")}
          cluster {
            name: mediajet
            listen: 0.0.0.0:6222
            authorization {
              user: route
              password: $MEDIAJET_NATS_ROUTE_PASSWORD
            }
            tls {
              cert_file: "{{ env "NOMAD_SECRETS_DIR" }}/tls/server.pem"
              key_file: "{{ env "NOMAD_SECRETS_DIR" }}/tls/server-key.pem"
              ca_file: "{{ env "NOMAD_SECRETS_DIR" }}/tls/ca.pem"
              verify: true
            }
            routes: [
          {{- range nomadService "nats-cluster" }}
              nats-route://route:{{ with nomadVar "nomad/jobs/nats" }}{{ .route_password }}{{ end }}@{{ .Address }}:{{ .Port }}
          {{- end }}
            ]
          }
          tls {
            cert_file: "{{ env "NOMAD_SECRETS_DIR" }}/tls/server.pem"
            key_file: "{{ env "NOMAD_SECRETS_DIR" }}/tls/server-key.pem"
          }
        EOT
      }

      # The nodes' certificate (for clients and routes) and its CA, from
      # Nomad Variables: tls_cert, tls_key, tls_ca (PEM).
      template {
        error_on_missing_key = true
        destination          = "secrets/tls/server.pem"
        data                 = "{{ with nomadVar \"nomad/jobs/nats\" }}{{ .tls_cert }}{{ end }}"
      }
      template {
        error_on_missing_key = true
        destination          = "secrets/tls/server-key.pem"
        perms                = "0600"
        data                 = "{{ with nomadVar \"nomad/jobs/nats\" }}{{ .tls_key }}{{ end }}"
      }
      template {
        error_on_missing_key = true
        destination          = "secrets/tls/ca.pem"
        data                 = "{{ with nomadVar \"nomad/jobs/nats\" }}{{ .tls_ca }}{{ end }}"
      }

      template {
        error_on_missing_key = true
        destination          = "secrets/passwords.env"
        env                  = true
        data                 = <<-EOT
          {{ with nomadVar "nomad/jobs/nats" }}
          MEDIAJET_NATS_AUTH_PASSWORD={{ .auth_password }}
          MEDIAJET_NATS_INGEST_PASSWORD={{ .ingest_password }}
          MEDIAJET_NATS_TRANSCODER_PASSWORD={{ .transcoder_password }}
          MEDIAJET_NATS_MAILER_PASSWORD={{ .mailer_password }}
          MEDIAJET_NATS_SUBMITTER_PASSWORD={{ .submitter_password }}
          MEDIAJET_NATS_OPERATOR_PASSWORD={{ .operator_password }}
          MEDIAJET_NATS_ROUTE_PASSWORD={{ .route_password }}
          {{ end }}
        EOT
      }

      resources {
        cpu    = 1000
        memory = 1024
      }
    }

    task "exporter" {
      driver = "docker"

      lifecycle {
        hook    = "poststart"
        sidecar = true
      }

      config {
        image = "natsio/prometheus-nats-exporter:0.17.3"
        ports = ["exporter"]
        args  = ["-varz", "-jsz=all", "-routez", "-port", "7777", "http://${NOMAD_ADDR_monitor}"]
      }

      resources {
        cpu    = 100
        memory = 64
      }
    }
  }
}
