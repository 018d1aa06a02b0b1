# mediajet's four actors, one group each, on a Nomad cluster that already
# runs nomad/nats.nomad.hcl and nomad/surrealdb.nomad.hcl.
#
#   nomad var put nomad/jobs/mediajet \
#     auth_nats_password=… ingest_nats_password=… \
#     transcoder_nats_password=… mailer_nats_password=… \
#     surreal_password=… smtp_url=smtp://user:pass@mail.example.com:587 \
#     admin_email=you@example.com admin_password=… signing_key=@signing-key.pem \
#     nats_tls_ca=@ca.pem surreal_tls_ca=@ca.pem
#   nomad job run -var image=registry.example.com/mediajet:1.0 nomad/mediajet.nomad.hcl
#
# The NATS passwords are the ones given to nomad/jobs/nats. Make the token
# signing key with `openssl genpkey -algorithm ed25519 -out signing-key.pem`. The image is built
# from the repository's Dockerfile (mediajet plus ffmpeg).

variable "image" {
  type        = string
  description = "The mediajet container image."
}

variable "public_url" {
  type        = string
  default     = "http://localhost:8080"
  description = "Base URL of the HTTP API, for links in emails."
}

variable "transcoder_drain_seconds" {
  type        = number
  default     = 60
  description = "How long a stopping transcoder lets running encodes finish; its kill_timeout follows."
}

variable "nats_replicas" {
  type        = number
  default     = 3
  description = "Replicas of every stream and bucket: the NATS cluster's size (nomad/nats.nomad.hcl runs three nodes)."
}

variable "media_store_bytes" {
  type        = number
  default     = 107374182400
  description = "Most bytes each media bucket (uploads, outputs) may hold: keep both together below the NATS nodes' JetStream storage, so jobs, sessions and events always have room."
}

locals {
  # Every process finds NATS and SurrealDB through Nomad service discovery.
  # NATS speaks TLS only; every process trusts the nodes' CA.
  nats_env = <<-EOT
    MEDIAJET_NATS_URL={{ range $i, $s := nomadService "nats" }}{{ if $i }},{{ end }}tls://{{ $s.Address }}:{{ $s.Port }}{{ end }}
    MEDIAJET_NATS_TLS_CA={{ env "NOMAD_SECRETS_DIR" }}/nats-ca.pem
    MEDIAJET_REPLICAS=${var.nats_replicas}
    MEDIAJET_UPLOADS_STORE_BYTES=${var.media_store_bytes}
    MEDIAJET_OUTPUTS_STORE_BYTES=${var.media_store_bytes}
  EOT
  # The same CA as the NATS job's tls_ca, kept under this job's variables.
  nats_ca = "{{ with nomadVar \"nomad/jobs/mediajet\" }}{{ .nats_tls_ca }}{{ end }}"
  surreal_env = <<-EOT
    MEDIAJET_SURREAL_URL={{ range nomadService "surrealdb" }}wss://{{ .Address }}:{{ .Port }}{{ end }}
    MEDIAJET_SURREAL_TLS_CA={{ env "NOMAD_SECRETS_DIR" }}/surreal-ca.pem
    MEDIAJET_SURREAL_USER=root
    {{ with nomadVar "nomad/jobs/mediajet" }}MEDIAJET_SURREAL_PASSWORD={{ .surreal_password }}{{ end }}
  EOT
}

job "mediajet" {
  type = "service"

  # Auth: users, logins, token signing. Stateless but for the signing key,
  # which every instance reads from Nomad Variables.
  group "auth" {
    count = 2

    update {
      max_parallel = 1
      canary       = 1
      auto_promote = true
      auto_revert  = true
    }

    network {
      port "http" {}
    }

    service {
      name     = "mediajet-auth"
      port     = "http"
      provider = "nomad"
      tags     = ["metrics"]

      check {
        type     = "http"
        path     = "/readyz"
        interval = "10s"
        timeout  = "2s"
      }
    }

    task "auth" {
      driver = "docker"

      # mediajet's shutdown budget without a transcoder (tests/it/nomad.rs).
      kill_timeout = "30s"

      config {
        image = var.image
        ports = ["http"]
        args  = ["run", "--actors", "auth"]
      }

      env {
        MEDIAJET_HTTP         = "0.0.0.0:${NOMAD_PORT_http}"
        MEDIAJET_DATA_DIR     = "${NOMAD_ALLOC_DIR}/data"
        MEDIAJET_NATS_USER    = "auth"
        MEDIAJET_JWT_KEY_FILE = "${NOMAD_SECRETS_DIR}/signing-key.pem"
      }

      template {
        destination = "local/nats.env"
        env         = true
        data        = local.nats_env
      }

      template {
        error_on_missing_key = true
        destination          = "secrets/nats-ca.pem"
        data                 = local.nats_ca
      }

      template {
        error_on_missing_key = true
        destination          = "secrets/surreal.env"
        env                  = true
        data                 = local.surreal_env
      }

      template {
        error_on_missing_key = true
        destination          = "secrets/surreal-ca.pem"
        data                 = "{{ with nomadVar \"nomad/jobs/mediajet\" }}{{ .surreal_tls_ca }}{{ end }}"
      }

      template {
        error_on_missing_key = true
        destination          = "secrets/nats.env"
        env                  = true
        data                 = "{{ with nomadVar \"nomad/jobs/mediajet\" }}MEDIAJET_NATS_PASSWORD={{ .auth_nats_password }}{{ end }}"
      }

      # Readable by the image's `mediajet` user (uid 10001) only.
      template {
        error_on_missing_key = true
        destination          = "secrets/signing-key.pem"
        perms                = "0400"
        uid                  = 10001
        data                 = "{{ with nomadVar \"nomad/jobs/mediajet\" }}{{ .signing_key }}{{ end }}"
      }

      # The first admin, ensured at start (the same on every instance).
      template {
        error_on_missing_key = true
        destination          = "secrets/admin.env"
        env                  = true
        data                 = <<-EOT
          {{ with nomadVar "nomad/jobs/mediajet" }}
          MEDIAJET_ADMIN_EMAIL={{ .admin_email }}
          MEDIAJET_ADMIN_PASSWORD={{ .admin_password }}
          {{ end }}
        EOT
      }

      resources {
        cpu    = 500
        memory = 256
      }
    }
  }

  # Ingest: the HTTP API. Uploads stream through it into the object store.
  group "ingest" {
    count = 2

    # A canary takes traffic next to the old version; a failing one is
    # rolled back. Safe: Ingest keeps no local state.
    update {
      max_parallel     = 1
      canary           = 1
      auto_promote     = true
      auto_revert      = true
      min_healthy_time = "15s"
    }

    network {
      port "http" {}
    }

    service {
      name     = "mediajet-ingest"
      port     = "http"
      provider = "nomad"
      tags     = ["metrics", "http"]

      check {
        type     = "http"
        path     = "/readyz"
        interval = "10s"
        timeout  = "2s"
      }
    }

    task "ingest" {
      driver = "docker"

      # Let running uploads and downloads finish.
      kill_timeout = "30s"

      config {
        image = var.image
        ports = ["http"]
        args  = ["run", "--actors", "ingest"]
      }

      env {
        MEDIAJET_HTTP       = "0.0.0.0:${NOMAD_PORT_http}"
        MEDIAJET_DATA_DIR   = "${NOMAD_ALLOC_DIR}/data"
        MEDIAJET_NATS_USER  = "ingest"
        MEDIAJET_PUBLIC_URL = var.public_url
      }

      template {
        destination = "local/nats.env"
        env         = true
        data        = local.nats_env
      }

      template {
        error_on_missing_key = true
        destination          = "secrets/nats-ca.pem"
        data                 = local.nats_ca
      }

      template {
        error_on_missing_key = true
        destination          = "secrets/surreal.env"
        env                  = true
        data                 = local.surreal_env
      }

      template {
        error_on_missing_key = true
        destination          = "secrets/surreal-ca.pem"
        data                 = "{{ with nomadVar \"nomad/jobs/mediajet\" }}{{ .surreal_tls_ca }}{{ end }}"
      }

      template {
        error_on_missing_key = true
        destination          = "secrets/nats.env"
        env                  = true
        data                 = "{{ with nomadVar \"nomad/jobs/mediajet\" }}MEDIAJET_NATS_PASSWORD={{ .ingest_nats_password }}{{ end }}"
      }

      resources {
        cpu    = 1000
        memory = 256
      }
    }
  }

  # Transcoders: the ffmpeg workers. They need no database and scale on
  # their own.
  group "transcoder" {
    count = 2

    scaling {
      enabled = true
      min     = 1
      max     = 20

      # For the Nomad Autoscaler: encodes are CPU-bound, so busy workers
      # mean a backlog; add workers while they average over 70% of their CPU.
      policy {
        cooldown            = "2m"
        evaluation_interval = "30s"

        check "cpu" {
          source = "nomad-apm"
          query  = "avg_cpu-allocated"

          strategy "target-value" {
            target = 70
          }
        }
      }
    }

    # Rolling, one worker at a time; a worker that cannot start is reverted.
    # No canary: a canary worker would take real work like any other.
    update {
      max_parallel     = 1
      auto_revert      = true
      min_healthy_time = "10s"
    }

    network {
      port "http" {}
    }

    # Work files live in the allocation's data dir: per encode a copy of the
    # upload (up to Ingest's 4 GiB limit) and the audio (up to 2 GiB), for
    # two encodes at once.
    ephemeral_disk {
      size = 12800
    }

    service {
      name     = "mediajet-transcoder"
      port     = "http"
      provider = "nomad"
      tags     = ["metrics"]

      check {
        type     = "http"
        path     = "/readyz"
        interval = "10s"
        timeout  = "2s"
      }
    }

    task "transcoder" {
      driver = "docker"

      # On SIGTERM a transcoder stops pulling work and lets running encodes
      # finish for --drain-timeout, then hands the rest back to the queue.
      # kill_timeout covers the drain timeout plus the time to nak, flush and
      # exit (mediajet's shutdown budget); shorter, and Nomad would SIGKILL
      # encodes that were about to finish (they would still be redelivered
      # after the ack wait, only later). Nomad clients cap kill_timeout at
      # their max_kill_timeout (30s unless raised): set it to the drain plus
      # 30s or more on the clients that run transcoders (README "Deploying on
      # Nomad"). The 30s cover the rest of the budget (25.3s).
      kill_timeout = "${var.transcoder_drain_seconds + 30}s"

      config {
        image = var.image
        ports = ["http"]
        args  = ["run", "--actors", "transcoder"]
      }

      env {
        MEDIAJET_HTTP          = "0.0.0.0:${NOMAD_PORT_http}"
        MEDIAJET_DATA_DIR      = "${NOMAD_ALLOC_DIR}/data"
        MEDIAJET_NATS_USER     = "transcoder"
        MEDIAJET_DRAIN_TIMEOUT = "${var.transcoder_drain_seconds}s"
        MEDIAJET_TRANSCODERS   = "2"
        # Each encode may use 1 GiB: two of them and mediajet itself fit in
        # the task's memory below (tests/it/nomad.rs checks the sum).
        MEDIAJET_FFMPEG_MEMORY_BYTES = "1073741824"
      }

      template {
        destination = "local/nats.env"
        env         = true
        data        = local.nats_env
      }

      template {
        error_on_missing_key = true
        destination          = "secrets/nats-ca.pem"
        data                 = local.nats_ca
      }

      template {
        error_on_missing_key = true
        destination          = "secrets/nats.env"
        env                  = true
        data                 = "{{ with nomadVar \"nomad/jobs/mediajet\" }}MEDIAJET_NATS_PASSWORD={{ .transcoder_nats_password }}{{ end }}"
      }

      resources {
        cpu    = 2000
        memory = 2304
      }
    }
  }

  # Mailer: one email per finished job.
  group "mailer" {
    count = 1

    update {
      max_parallel = 1
      auto_revert  = true
    }

    network {
      port "http" {}
    }

    service {
      name     = "mediajet-mailer"
      port     = "http"
      provider = "nomad"
      tags     = ["metrics"]

      check {
        type     = "http"
        path     = "/readyz"
        interval = "10s"
        timeout  = "2s"
      }
    }

    task "mailer" {
      driver = "docker"

      # mediajet's shutdown budget without a transcoder (tests/it/nomad.rs).
      kill_timeout = "30s"

      config {
        image = var.image
        ports = ["http"]
        args  = ["run", "--actors", "mailer"]
      }

      env {
        MEDIAJET_HTTP       = "0.0.0.0:${NOMAD_PORT_http}"
        MEDIAJET_DATA_DIR   = "${NOMAD_ALLOC_DIR}/data"
        MEDIAJET_NATS_USER  = "mailer"
        MEDIAJET_PUBLIC_URL = var.public_url
      }

      template {
        destination = "local/nats.env"
        env         = true
        data        = local.nats_env
      }

      template {
        error_on_missing_key = true
        destination          = "secrets/nats-ca.pem"
        data                 = local.nats_ca
      }

      template {
        error_on_missing_key = true
        destination          = "secrets/mail.env"
        env                  = true
        data                 = <<-EOT
          {{ with nomadVar "nomad/jobs/mediajet" }}
          MEDIAJET_NATS_PASSWORD={{ .mailer_nats_password }}
          MEDIAJET_SMTP_URL={{ .smtp_url }}
          {{ end }}
        EOT
      }

      resources {
        cpu    = 200
        memory = 128
      }
    }
  }
}
