# SurrealDB for mediajet's users and job history (Auth and Ingest only).
#
#   nomad var put nomad/jobs/surrealdb root_password=… \
#     tls_cert=@surrealdb.pem tls_key=@surrealdb-key.pem
#   nomad job run nomad/surrealdb.nomad.hcl
#
# The Nomad client that runs it needs a host volume named `surrealdb-data`.

variable "image" {
  type    = string
  default = "surrealdb/surrealdb:v3.3"
}

job "surrealdb" {
  type = "service"

  group "surrealdb" {
    # One server with an embedded surrealkv store: a second one would not
    # share its data.
    count = 1

    network {
      port "ws" { static = 8000 }
    }

    volume "data" {
      type      = "host"
      source    = "surrealdb-data"
      read_only = false
    }

    service {
      name     = "surrealdb"
      port     = "ws"
      provider = "nomad"

      check {
        type     = "http"
        path     = "/health"
        interval = "10s"
        timeout  = "2s"
      }
    }

    task "surrealdb" {
      driver = "docker"

      config {
        image = var.image
        ports = ["ws"]
        # TLS only: Auth and Ingest connect with wss:// and trust its CA.
        args = [
          "start", "--bind", "0.0.0.0:8000",
          "--web-crt", "/secrets/tls/server.pem", "--web-key", "/secrets/tls/server-key.pem",
          "surrealkv:/data/mediajet.db",
        ]
      }

      template {
        error_on_missing_key = true
        destination          = "secrets/tls/server.pem"
        data                 = "{{ with nomadVar \"nomad/jobs/surrealdb\" }}{{ .tls_cert }}{{ end }}"
      }
      template {
        error_on_missing_key = true
        destination          = "secrets/tls/server-key.pem"
        perms                = "0600"
        data                 = "{{ with nomadVar \"nomad/jobs/surrealdb\" }}{{ .tls_key }}{{ end }}"
      }

      volume_mount {
        volume      = "data"
        destination = "/data"
      }

      # The root credentials come from Nomad Variables, never from the job.
      template {
        error_on_missing_key = true
        destination          = "secrets/root.env"
        env                  = true
        data                 = <<-EOT
          SURREAL_USER=root
          {{ with nomadVar "nomad/jobs/surrealdb" }}SURREAL_PASS={{ .root_password }}{{ end }}
        EOT
      }

      resources {
        cpu    = 500
        memory = 1024
      }
    }
  }
}
