#!/usr/bin/env bash
# Build every smlocal image offline, skipping those whose inputs did not change.
#
#   docker/build-images.sh             # engine, base, then every docker/<dir>/Dockerfile
#   docker/build-images.sh byo-example # engine, base, then only the images named
#   docker/build-images.sh --force     # rebuild everything
#
# 1. docker/engine.sh: a running Docker engine (installs docker.io and starts dockerd if needed).
# 2. docker/base/build.sh: smlocal/base:latest from a debootstrapped Debian rootfs.
# 3. docker/<dir>/Dockerfile -> smlocal/<dir>:latest (plus smlocal/<dir>:<hash>). If the
#    directory has a requirements.txt, its wheels are downloaded on the host first
#    (wheels_for, in lib.sh) into <dir>/wheels/, which the Dockerfile installs --no-index.
#    A <dir>/prepare.sh, if present, first copies repository files into the build context.
#    An image is skipped when the hash of its directory (minus wheels/) and of the images its
#    Dockerfile builds FROM matches the org.smlocal.inputs-hash label of the existing image.
set -euo pipefail
LOG_TAG=images
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"
cd "$SMLOCAL_DOCKER_DIR"

FORCE=()
ONLY=()
for arg in "$@"; do
    case $arg in
        --force) FORCE=(--force) ;;
        -h|--help) sed -n '2,14p' "$SMLOCAL_DOCKER_DIR/build-images.sh"; exit 0 ;;
        *) ONLY+=("${arg%/}") ;;
    esac
done

for name in "${ONLY[@]}"; do
    [[ -f "$name/Dockerfile" ]] || { log "no docker/$name/Dockerfile"; exit 1; }
done

t0=$(now)
bash ./engine.sh
bash ./base/build.sh "${FORCE[@]}"

# The ids of the images a Dockerfile builds FROM (stage names and unknown images are skipped),
# so a rebuilt base image rebuilds everything on top of it.
parent_ids() {
    local ref
    awk 'toupper($1) == "FROM" { for (i = 2; i <= NF; i++) if ($i !~ /^--/) { print $i; break } }' \
        "$1/Dockerfile" | sort -u | while read -r ref; do
        docker image inspect -f "$ref={{.Id}}" "$ref" 2>/dev/null || true
    done
}

build_image() {
    local dir=$1 image="smlocal/$1" hash old old_id t1
    t1=$(now)
    # A prepare.sh copies what the image carries from the repository into its context first.
    [[ -f "$dir/prepare.sh" ]] && bash "$dir/prepare.sh"
    [[ -f "$dir/requirements.txt" ]] && wheels_for "$SMLOCAL_DOCKER_DIR/$dir" "$dir/requirements.txt"
    mapfile -t parents < <(parent_ids "$dir")
    hash=$(inputs_hash "$dir" "${parents[@]}")
    old=$(image_hash "$image:latest")
    old_id=$(image_id "$image:latest")
    if ((${#FORCE[@]} == 0)) && [[ "$old" == "$hash" ]]; then
        log "$image:latest is up to date (inputs $hash); skipped in $(elapsed "$t1")s"
        return 0
    fi
    log "building $image:latest (inputs $hash)"
    # The legacy builder: Debian's docker.io has no buildx. It still prints a notice about that.
    if ! DOCKER_BUILDKIT=0 docker build -q --label "$HASH_LABEL=$hash" \
            -t "$image:latest" -t "$image:$hash" "$dir" >"/tmp/smlocal-build-$dir.log" 2>&1; then
        log "building $image failed:"
        tail -n 40 "/tmp/smlocal-build-$dir.log" >&2
        return 1
    fi
    retire "$image" "$old_id" "$old" "$hash"
    log "$image:latest built in $(elapsed "$t1")s, $(docker image inspect -f '{{.Size}}' \
        "$image:latest" | awk '{ printf "%.0f MB", $1 / 1e6 }')"
}

dirs=()
for dockerfile in */Dockerfile; do
    [[ -f $dockerfile ]] || continue
    dir=${dockerfile%/Dockerfile}
    if ((${#ONLY[@]})) && [[ " ${ONLY[*]} " != *" $dir "* ]]; then continue; fi
    dirs+=("$dir")
done
for dir in "${dirs[@]}"; do
    build_image "$dir"
done
# Untagged leftovers of our builds (a multi-stage build's wheel-install stage, replaced images):
# only images that carry our label, so nobody else's images or build cache are touched.
docker image prune -f --filter "label=$HASH_LABEL" >/dev/null 2>&1 || true
log "all images ready in $(elapsed "$t0")s"
