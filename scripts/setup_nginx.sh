#!/usr/bin/env bash
# Installs Debian's nginx binary for the provider tests (Basic-auth asset host).
# Idempotent. The tests run nginx themselves as a foreground child with their own
# config in a temporary folder; no system service is enabled or started here.
set -euo pipefail

if command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ]; then
    echo "nginx already installed: $( (nginx -v || /usr/sbin/nginx -v) 2>&1)"
    exit 0
fi

SUDO=""
if [ "$(id -u)" != "0" ]; then
    SUDO="sudo"
fi

export DEBIAN_FRONTEND=noninteractive
# policy-rc.d keeps the package's post-install from starting a system service.
POLICY=/usr/sbin/policy-rc.d
CREATED_POLICY=0
if [ ! -e "$POLICY" ]; then
    printf '#!/bin/sh\nexit 101\n' | $SUDO tee "$POLICY" >/dev/null
    $SUDO chmod +x "$POLICY"
    CREATED_POLICY=1
fi
cleanup() { if [ "$CREATED_POLICY" = 1 ]; then $SUDO rm -f "$POLICY"; fi; }
trap cleanup EXIT

$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends nginx
echo "installed: $(/usr/sbin/nginx -v 2>&1)"
