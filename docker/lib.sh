# Shared helpers for docker/*.sh. Source it; do not run it.
# shellcheck shell=bash

SMLOCAL_DOCKER_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
HASH_LABEL=org.smlocal.inputs-hash

log() { printf '[%s] %s\n' "${LOG_TAG:-docker}" "$*" >&2; }

# inputs_hash DIR [EXTRA...]: a short sha256 over every file under DIR (path + content, sorted,
# skipping wheels/ and other gitignored build output) plus any EXTRA strings (e.g. parent image ids).
inputs_hash() {
    local dir=$1; shift
    {
        (cd "$dir" && find . -type f ! -path './wheels/*' ! -name '*.pyc' ! -path '*/__pycache__/*' \
            -print0 | LC_ALL=C sort -z | xargs -0 -r sha256sum)
        printf '%s\n' "$@"
    } | sha256sum | cut -c1-16
}

# image_hash IMAGE: the inputs hash recorded on IMAGE, or nothing if it has none / does not exist.
image_hash() {
    docker image inspect -f "{{index .Config.Labels \"$HASH_LABEL\"}}" "$1" 2>/dev/null || true
}

# image_id IMAGE: its id, or nothing.
image_id() { docker image inspect -f '{{.Id}}' "$1" 2>/dev/null || true; }

# retire IMAGE OLD_ID OLD_HASH NEW_HASH: after a rebuild, drop the previous IMAGE:OLD_HASH tag,
# then the replaced image itself if nothing else tags it, so old images do not pile up.
# (docker rmi refuses images that containers or other images still use; that is fine.)
retire() {
    local image=$1 old_id=$2 old_hash=$3 new_hash=$4
    if [[ -n "$old_hash" && "$old_hash" != "$new_hash" ]]; then
        docker rmi "$image:$old_hash" >/dev/null 2>&1 || true
    fi
    if [[ -n "$old_id" && "$old_id" != "$(image_id "$image:latest")" &&
          "$(docker image inspect -f '{{len .RepoTags}}' "$old_id" 2>/dev/null)" == 0 ]]; then
        docker rmi "$old_id" >/dev/null 2>&1 || true
    fi
}

# elapsed START: seconds since START (from `now`), one decimal.
now() { date +%s.%N; }
elapsed() { awk -v s="$1" -v e="$(date +%s.%N)" 'BEGIN { printf "%.1f", e - s }'; }

# wheels_for IMAGE_DIR REQUIREMENTS: download the wheels REQUIREMENTS needs (and their
# dependencies) into IMAGE_DIR/wheels/, for the images' Python (CPython 3.11, manylinux x86_64 or
# aarch64: the same as the host on this project's machines). Binary wheels only: the images have
# no compiler and no network. Skipped when the requirements did not change since the last download.
# The Dockerfile then installs them with `pip install --no-index --find-links`.
SMLOCAL_IMAGE_PYTHON=${SMLOCAL_IMAGE_PYTHON:-3.11}
wheels_for() {
    local dir=$1 req=$2 out stamp want arch pyver
    out="$dir/wheels"
    stamp="$out/.requirements.sha256"
    mkdir -p "$out"
    pyver=${SMLOCAL_IMAGE_PYTHON//./}
    arch=$(uname -m)
    want=$( { cat "$req"; echo "py=$pyver arch=$arch"; } | sha256sum | cut -c1-16)
    if [[ -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
        log "wheels for $(basename "$dir"): up to date"
        return 0
    fi
    find "$out" -mindepth 1 -delete
    if grep -qvE '^[[:space:]]*(#|$)' "$req"; then
        log "downloading wheels for $(basename "$dir") from $req"
        # pip does not widen manylinux_2_X platforms to older glibcs by itself: list them all
        # (bookworm has glibc 2.36). manylinux2014 widens to manylinux2010 and manylinux1.
        local plats=(--platform "manylinux2014_$arch") g
        for g in $(seq 17 36); do plats+=(--platform "manylinux_2_${g}_$arch"); done
        python3 -m pip download --quiet --disable-pip-version-check --no-cache-dir \
            --only-binary=:all: --implementation cp --python-version "$SMLOCAL_IMAGE_PYTHON" \
            --abi "cp$pyver" --abi abi3 --abi none \
            "${plats[@]}" --dest "$out" -r "$req"
    fi
    echo "$want" >"$stamp"
}
