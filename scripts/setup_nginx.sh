#!/usr/bin/env bash
# Installs Debian's nginx for the provider tests (the Basic-auth asset host) and
# prints its path as a KEY=VALUE line (scripts/test.sh exports such lines):
#     LEAFMAP_TILES_NGINX=/usr/sbin/nginx
# Idempotent. No system service is enabled or started: the tests run nginx
# themselves as a foreground child with their own config in a temporary folder.
set -euo pipefail

log() { echo "setup_nginx: $*" >&2; }

find_nginx() { command -v nginx 2>/dev/null || { [ -x /usr/sbin/nginx ] && echo /usr/sbin/nginx; } || true; }

NGINX="$(find_nginx)"
if [ -z "$NGINX" ]; then
    SUDO=""
    if [ "$(id -u)" != "0" ]; then SUDO="sudo"; fi
    export DEBIAN_FRONTEND=noninteractive
    # a policy-rc.d that says no keeps the package from starting a system service
    POLICY=/usr/sbin/policy-rc.d
    CREATED_POLICY=0
    if [ ! -e "$POLICY" ]; then
        printf '#!/bin/sh\nexit 101\n' | $SUDO tee "$POLICY" >/dev/null
        $SUDO chmod +x "$POLICY"
        CREATED_POLICY=1
    fi
    cleanup() { if [ "$CREATED_POLICY" = 1 ]; then $SUDO rm -f "$POLICY"; fi; }
    trap cleanup EXIT
    log "installing Debian nginx"
    $SUDO apt-get update -qq >&2
    $SUDO apt-get install -y -qq --no-install-recommends nginx >&2
    NGINX="$(find_nginx)"
fi
[ -n "$NGINX" ] || { log "nginx not found after install"; exit 1; }
log "$("$NGINX" -v 2>&1)"
echo "LEAFMAP_TILES_NGINX=$NGINX"
