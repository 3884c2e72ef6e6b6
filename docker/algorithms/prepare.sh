#!/usr/bin/env bash
# Copies the repository's algorithms/ package into this build context (src/, gitignored) before
# build-images.sh hashes the context: a change to any algorithm rebuilds the image.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
rm -rf "$here/src"
mkdir -p "$here/src"
tar -C "$here/../.." --exclude='__pycache__' --exclude='*.pyc' -cf - algorithms | tar -C "$here/src" -xf -
