# Prometheus, scraping every mediajet process and every NATS node's exporter
# that Nomad's service discovery knows (services tagged `metrics`), with
# mediajet's alert rules (ops/prometheus/alerts.yml) loaded.
#
# Run from the repository root (the job embeds the rules file):
#
#   nomad job run nomad/prometheus.nomad.hcl

variable "image" {
  type    = string
  default = "prom/prometheus:v3.5.0"
}

variable "nomad_address" {
  type        = string
  default     = "http://{{ env \"attr.unique.network.ip-address\" }}:4646"
  description = "The Nomad HTTP API that service discovery asks."
}

job "prometheus" {
  type = "service"

  group "prometheus" {
    count = 1

    network {
      port "http" { static = 9090 }
    }

    volume "data" {
      type      = "host"
      source    = "prometheus-data"
      read_only = false
    }

    service {
      name     = "prometheus"
      port     = "http"
      provider = "nomad"

      check {
        type     = "http"
        path     = "/-/healthy"
        interval = "10s"
        timeout  = "2s"
      }
    }

    task "prometheus" {
      driver = "docker"

      config {
        image = var.image
        ports = ["http"]
        args = [
          "--config.file=/local/prometheus.yml",
          "--storage.tsdb.path=/data",
          "--web.enable-lifecycle",
        ]
      }

      volume_mount {
        volume      = "data"
        destination = "/data"
      }

      # A new or moved service needs no reload: nomad_sd_configs asks Nomad.
      template {
        destination   = "local/prometheus.yml"
        change_mode   = "signal"
        change_signal = "SIGHUP"
        data          = <<-EOT
          global:
            scrape_interval: 15s

          # Next to this file (Prometheus reads rule files relative to it).
          rule_files:
            - alerts.yml

          # Alerts go to an Alertmanager registered as the Nomad service
          # `alertmanager`, when there is one.
          alerting:
            alertmanagers:
              - nomad_sd_configs:
                  - server: "${var.nomad_address}"
                relabel_configs:
                  - source_labels: [__meta_nomad_service]
                    regex: alertmanager
                    action: keep

          scrape_configs:
            # Every service tagged `metrics`: each mediajet process (/metrics
            # on its service port) and the NATS exporters.
            - job_name: nomad-services
              nomad_sd_configs:
                - server: "${var.nomad_address}"
              relabel_configs:
                - source_labels: [__meta_nomad_tags]
                  regex: '(.*,)?metrics(,.*)?'
                  action: keep
                # The service names the group (mediajet-transcoder, …). No
                # `actor` target label: mediajet's own metrics carry one.
                - source_labels: [__meta_nomad_service]
                  target_label: service
                - source_labels: [__meta_nomad_node_id]
                  target_label: node
              metrics_path: /metrics
        EOT
      }

      # The alert rules, as the repository has them. They are Go templates
      # themselves ({{ $labels.instance }}), so this template uses other
      # delimiters and leaves them for Prometheus.
      template {
        destination     = "local/alerts.yml"
        change_mode     = "signal"
        change_signal   = "SIGHUP"
        left_delimiter  = "[["
        right_delimiter = "]]"
        data            = file("ops/prometheus/alerts.yml")
      }

      resources {
        cpu    = 500
        memory = 512
      }
    }
  }
}
