#!/usr/bin/env bash
# Make sure a Docker engine answers `docker info`. Idempotent; run as root.
#
#   docker/engine.sh            # install docker.io if needed, start dockerd, wait for it
#   docker/engine.sh --check    # also verify container<->container and container->host networking
#
# This project's machines have no Docker engine and no registry, so we run Debian's docker.io
# with `--iptables=false` (no NAT, no published-port DNAT: docker-proxy does the publishing).
# Containers still reach each other on a user-defined bridge, and reach the host at the
# bridge's gateway address (the host owns that IP; no forwarding is involved).
set -euo pipefail

LOG=${SMLOCAL_DOCKERD_LOG:-/var/log/dockerd.log}
TIMEOUT=${SMLOCAL_DOCKERD_TIMEOUT:-60}
CHECK=0
[[ "${1:-}" == "--check" ]] && CHECK=1

say() { printf '[engine] %s\n' "$*" >&2; }

engine_up() { docker info >/dev/null 2>&1; }

install_docker() {
    if command -v dockerd >/dev/null 2>&1; then return 0; fi
    say "installing docker.io"
    export DEBIAN_FRONTEND=noninteractive
    # --no-install-recommends keeps out the recommended extras (apparmor, git, xz-utils...).
    if ! apt-get install -y -qq --no-install-recommends docker.io >/dev/null; then
        say "install failed; refreshing package lists and retrying"
        apt-get update -qq
        apt-get install -y -qq --no-install-recommends docker.io >/dev/null
    fi
}

# Start dockerd with the given storage driver; return 0 once `docker info` answers.
start_dockerd() {
    local driver=$1 pid deadline
    say "starting dockerd --storage-driver=$driver (log: $LOG)"
    mkdir -p "$(dirname "$LOG")"
    # setsid + nohup: the daemon must outlive this script and the CI step's process group.
    setsid nohup dockerd --iptables=false --storage-driver="$driver" >>"$LOG" 2>&1 </dev/null &
    pid=$!
    deadline=$((SECONDS + TIMEOUT))
    while ((SECONDS < deadline)); do
        if engine_up; then
            say "dockerd up (pid $pid, storage driver $driver) after $((SECONDS - start))s"
            return 0
        fi
        if ! kill -0 "$pid" 2>/dev/null; then
            say "dockerd (pid $pid) exited"
            return 1
        fi
        sleep 0.5
    done
    say "dockerd did not answer within ${TIMEOUT}s; stopping it"
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 20); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
    return 1
}

# A dockerd that is already running (but not yet answering) must not be started twice.
dockerd_running() {
    local pid
    pid=$(cat /var/run/docker.pid 2>/dev/null) && [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null
}

check_network() {
    local net=smlocal-engine-check gw port srv_pid ok=1 img=${SMLOCAL_CHECK_IMAGE:-smlocal/base:latest}
    if ! docker image inspect "$img" >/dev/null 2>&1; then
        say "network check skipped: image $img not built yet (run docker/base/build.sh)"
        return 0
    fi
    docker network rm "$net" >/dev/null 2>&1 || true
    docker network create "$net" >/dev/null
    gw=$(docker network inspect -f '{{(index .IPAM.Config 0).Gateway}}' "$net")
    say "network $net gateway $gw"
    port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("", 0)); print(s.getsockname()[1])')
    python3 -m http.server "$port" --bind "$gw" >/dev/null 2>&1 &
    srv_pid=$!
    docker rm -f smlocal-check-2 >/dev/null 2>&1 || true
    docker run -d --rm --name smlocal-check-2 --hostname algo-2 --network "$net" \
        --network-alias algo-2 "$img" python3 -m http.server 8000 >/dev/null
    if docker run --rm --hostname algo-1 --network "$net" --network-alias algo-1 \
        -e URL="http://$gw:$port/" "$img" \
        sh -c 'curl -fsS -o /dev/null --retry 10 --retry-connrefused --retry-delay 1 http://algo-2:8000/ &&
               echo "container->container by name (algo-2): ok" &&
               curl -fsS -o /dev/null --max-time 5 "$URL" &&
               echo "container->host server on the gateway ($URL): ok"' >&2; then
        ok=0
    fi
    docker rm -f smlocal-check-2 >/dev/null 2>&1 || true
    kill "$srv_pid" 2>/dev/null || true
    docker network rm "$net" >/dev/null 2>&1 || true
    if ((ok)); then say "network check FAILED"; return 1; fi
    say "network check ok"
}

start=$SECONDS
if engine_up; then
    say "docker engine already answers"
else
    if [[ $(id -u) != 0 ]]; then
        say "docker info fails and only root can install or start the engine:"
        docker info 2>&1 | tail -n 3 >&2 || true
        say "run this script as root (or join the docker group if a daemon runs already)"
        exit 1
    fi
    install_docker
    if dockerd_running; then
        say "dockerd is running but not answering yet; waiting"
        deadline=$((SECONDS + TIMEOUT))
        until engine_up || ((SECONDS >= deadline)); do sleep 0.5; done
    fi
    if ! engine_up; then
        if ! start_dockerd overlay2; then
            say "overlay2 failed; last lines of $LOG:"
            tail -n 15 "$LOG" >&2 || true
            say "falling back to --storage-driver=vfs (slower, uses more disk)"
            if ! start_dockerd vfs; then
                say "dockerd failed to start; last lines of $LOG:"
                tail -n 40 "$LOG" >&2 || true
                exit 1
            fi
        fi
    fi
fi
if ((CHECK)); then check_network; fi
exit 0
