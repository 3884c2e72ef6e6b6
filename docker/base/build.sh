#!/usr/bin/env bash
# Build smlocal/base:latest offline: debootstrap a minimal Debian rootfs with python3 and import it.
# No registry is reachable on this project's machines, so there is no `FROM debian`; every other
# image starts `FROM smlocal/base:latest`.
#
#   docker/base/build.sh           # skipped when the image exists with the same inputs hash
#   docker/base/build.sh --force   # rebuild anyway
#
# Environment: SMLOCAL_DEBIAN_MIRROR (default: the host's apt mirror), SMLOCAL_CACHE
# (default /var/cache/smlocal; keeps downloaded .debs so a rebuild does not fetch them again).
# Needs root (debootstrap) and a running engine (docker/engine.sh).
set -euo pipefail
LOG_TAG=base
# shellcheck source=../lib.sh
source "$(dirname "$0")/../lib.sh"

IMAGE=smlocal/base
SUITE=bookworm
# What the images need at run time. No tini: SageMaker runs `docker run IMAGE train|serve`,
# and the scripts handle SIGTERM themselves. python3-pip installs wheels in derived images.
PACKAGES=python3,python3-pip,ca-certificates,procps,iproute2,curl
FORCE=0
[[ "${1:-}" == "--force" ]] && FORCE=1

t0=$(now)
hash=$(inputs_hash "$SMLOCAL_DOCKER_DIR/base" "suite=$SUITE" "arch=$(dpkg --print-architecture)")
old_hash=$(image_hash "$IMAGE:latest")
old_id=$(image_id "$IMAGE:latest")
if ((!FORCE)) && [[ "$old_hash" == "$hash" ]]; then
    log "$IMAGE:latest is up to date (inputs $hash); skipped in $(elapsed "$t0")s"
    exit 0
fi

[[ $(id -u) == 0 ]] || { log "debootstrap needs root"; exit 1; }

# The host's apt mirror for a suite: the first URI whose entry lists exactly that suite
# (one-line .list entries and deb822 .sources stanzas).
host_mirror() {
    local suite=$1 f
    for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
        [[ -f $f ]] || continue
        sed -e 's/\[[^]]*\]//' "$f" | awk -v s="$suite" '$1 == "deb" && $3 == s { print $2; exit }'
    done
    for f in /etc/apt/sources.list.d/*.sources; do
        [[ -f $f ]] || continue
        awk -v s="$suite" 'BEGIN { RS = ""; FS = "\n" }
            { uri = ""; hit = 0
              for (i = 1; i <= NF; i++) {
                if ($i ~ /^URIs:/)   { split($i, a, /[ \t]+/); uri = a[2] }
                if ($i ~ /^Suites:/) { n = split($i, b, /[ \t]+/); for (j = 2; j <= n; j++) if (b[j] == s) hit = 1 }
              }
              if (hit && uri != "") { print uri; exit } }' "$f"
    done
}
MIRROR=${SMLOCAL_DEBIAN_MIRROR:-$(host_mirror "$SUITE" | sed -n 1p)}
MIRROR=${MIRROR:-http://deb.debian.org/debian}
SECURITY_MIRROR=${SMLOCAL_DEBIAN_SECURITY_MIRROR:-$(host_mirror "$SUITE-security" | sed -n 1p)}
SECURITY_MIRROR=${SECURITY_MIRROR:-http://deb.debian.org/debian-security}
CACHE=${SMLOCAL_CACHE:-/var/cache/smlocal}/debootstrap-$SUITE
log "building $IMAGE:latest (inputs $hash) from $MIRROR and $SECURITY_MIRROR"

command -v debootstrap >/dev/null || {
    log "installing debootstrap"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends debootstrap >/dev/null
}

work=$(mktemp -d /var/tmp/smlocal-base.XXXXXX)
cleanup() {
    # Never rm -rf through a live mount: detach whatever debootstrap or we left mounted inside
    # (deepest first), then the tmpfs itself.
    local m
    for m in $(awk -v w="$work/" 'index($2, w) == 1 { print $2 }' /proc/mounts | sort -r); do
        umount -l "$m" 2>/dev/null || true
    done
    umount -l "$work" 2>/dev/null || true
    rm -rf --one-file-system "$work"
}
trap cleanup EXIT
# dpkg fsyncs every file it unpacks, which makes debootstrap disk-bound (~110 s on ext4);
# on a tmpfs it is CPU-bound. The rootfs needs ~300 MB while it is being built.
mount -t tmpfs -o size=2g,mode=0755 smlocal-base "$work" 2>/dev/null ||
    log "could not mount a tmpfs on $work; building on disk (slower)"
rootfs=$work/rootfs
mkdir -p "$CACHE"

t1=$(now)
debootstrap --variant=minbase --include="$PACKAGES" --cache-dir="$CACHE" \
    "$SUITE" "$rootfs" "$MIRROR" >"$work/debootstrap.log" 2>&1 || {
    log "debootstrap failed; last lines of its log:"
    tail -n 30 "$work/debootstrap.log" >&2
    [[ -f $rootfs/debootstrap/debootstrap.log ]] && tail -n 30 "$rootfs/debootstrap/debootstrap.log" >&2
    exit 1
}
log "debootstrap: $(elapsed "$t1")s"

# Security and point-release updates. `apt-get upgrade` installs no new packages, so the lists
# of the two small update suites suffice (the main suite's list is ~9 MB to fetch and parse).
cat >"$rootfs/etc/apt/sources.list" <<EOF
deb $MIRROR $SUITE-updates main
deb $SECURITY_MIRROR $SUITE-security main
EOF
# Never install docs, man pages or translations in this image or in images built from it.
cat >"$rootfs/etc/dpkg/dpkg.cfg.d/01-smlocal-nodoc" <<'EOF'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
path-include /usr/share/locale/locale.alias
path-exclude /usr/share/lintian/*
EOF
cat >"$rootfs/etc/apt/apt.conf.d/01-smlocal" <<'EOF'
APT::Install-Recommends "false";
APT::Install-Suggests "false";
Acquire::Languages "none";
EOF

t1=$(now)
cp /etc/resolv.conf "$rootfs/etc/resolv.conf"
mount -t proc proc "$rootfs/proc"
chroot "$rootfs" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin DEBIAN_FRONTEND=noninteractive \
    sh -ec 'apt-get update -qq && apt-get -y -qq -o Dpkg::Use-Pty=0 upgrade >/dev/null
            apt-get clean' >"$work/upgrade.log" 2>&1 || {
    log "apt-get upgrade in the rootfs failed:"; tail -n 30 "$work/upgrade.log" >&2; exit 1; }
umount "$rootfs/proc"
log "security upgrade: $(elapsed "$t1")s"
# The image keeps all three sources, so a derived image can still `apt-get update && apt-get
# install` when it is built with `docker build --network host`.
cat >"$rootfs/etc/apt/sources.list" <<EOF
deb $MIRROR $SUITE main
deb $MIRROR $SUITE-updates main
deb $SECURITY_MIRROR $SUITE-security main
EOF

# Slim down: caches, lists, docs, logs; things Docker provides at run time.
rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/* "$rootfs"/var/cache/debconf/*-old \
    "$rootfs"/var/log/* "$rootfs"/tmp/* "$rootfs"/var/tmp/* "$rootfs"/root/.cache \
    "$rootfs"/usr/share/man/* "$rootfs"/usr/share/info/* "$rootfs"/usr/share/lintian \
    "$rootfs"/debootstrap
find "$rootfs/usr/share/doc" -mindepth 1 -not -name copyright -not -type d -delete
find "$rootfs/usr/share/doc" -mindepth 1 -type d -empty -delete
find "$rootfs/usr/share/locale" -mindepth 1 -maxdepth 1 -not -name locale.alias -exec rm -rf {} +
: >"$rootfs/etc/resolv.conf"
: >"$rootfs/etc/hostname"
: >"$rootfs/etc/machine-id"
# A container image is not the system Python's "externally managed" host: let pip install there.
rm -f "$rootfs"/usr/lib/python3*/EXTERNALLY-MANAGED

t1=$(now)
tar --numeric-owner --xattrs -C "$rootfs" -c . | docker import \
    --change "LABEL $HASH_LABEL=$hash" \
    --change "LABEL org.smlocal.debian-suite=$SUITE" \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'ENV LANG=C.UTF-8 PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1' \
    --change 'ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_ROOT_USER_ACTION=ignore' \
    --change 'CMD ["/bin/bash"]' \
    - "$IMAGE:latest" >/dev/null
docker tag "$IMAGE:latest" "$IMAGE:$hash"
retire "$IMAGE" "$old_id" "$old_hash" "$hash"
log "import: $(elapsed "$t1")s"
log "$IMAGE:latest built in $(elapsed "$t0")s, $(docker image inspect -f '{{.Size}}' "$IMAGE:latest" |
    awk '{ printf "%.0f MB", $1 / 1e6 }')"
