#!/bin/sh
# Makes the files deploy/docker-compose.yaml mounts: a self-signed API certificate and the
# SSH host key every replica shares. For anything but a trial, bring your own certificate.
set -eu
cd "$(dirname "$0")"
mkdir -p secrets
[ -f secrets/tls.key ] || openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 365 \
  -subj /CN=localhost -addext subjectAltName=DNS:localhost,DNS:hoop.example.com \
  -keyout secrets/tls.key -out secrets/tls.crt
[ -f secrets/ssh_host_ed25519_key ] || ssh-keygen -q -t ed25519 -N '' -C hoopctl-gateway -f secrets/ssh_host_ed25519_key
chmod 0644 secrets/tls.crt secrets/tls.key secrets/ssh_host_ed25519_key  # read by the image's `node` user
