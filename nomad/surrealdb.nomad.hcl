# SurrealDB for mediajet's users and job history (Auth and Ingest only).
#
#   nomad var put nomad/jobs/surrealdb root_password=…
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
        args  = ["start", "--bind", "0.0.0.0:8000", "surrealkv:/data/mediajet.db"]
      }

      volume_mount {
        volume      = "data"
        destination = "/data"
      }

      # The root credentials come from Nomad Variables, never from the job.
      template {
        destination = "secrets/root.env"
        env         = true
        data        = <<-EOT
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
