#!/usr/bin/env bash
# Installs reviewscore and its locked dependencies into the Python environment whose `pip` and
# `python` come first on PATH, and checks the result. The one way the job's worker environment is
# built: deploy/Dockerfile runs it on top of Beam's SDK image, deploy/worker_env.py runs it in a
# virtual environment to rehearse that image without Docker (it activates the environment first).
#
# Usage: deploy/install_worker_env.sh [--beam-image-pins FILE] [--lock FILE] [--deps-only | --package-only]
#   --beam-image-pins FILE  first install the package set of Beam's SDK image
#                           (deploy/beam_image_requirements.txt): only where no Beam image is
#                           underneath, i.e. the rehearsal; the image already has it from its FROM.
#   --lock FILE             the job's dependencies (default requirements.lock; the Dockerfile's LOCK
#                           build argument may choose requirements-tensorflow.lock).
#   --deps-only             stop after the dependencies (the image's first layer, which a change of
#                           code then reuses).
#   --package-only          only the package and the checks (the image's second layer; a rehearsal
#                           environment reused after a change of code).
# Steps, in order: [pip install -r BEAM_IMAGE_PINS], pip install -r LOCK, pip install --no-deps .,
# pip check, the import check, and deploy/check_beam_extras.py (Beam's gcp and dataframe extras,
# which the image ships and pip check cannot see). The package is installed from the directory
# above this script: the repository, or the image's /template.
set -euo pipefail

usage() { sed -n '7,16p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }

base_pins=""
lock="requirements.lock"
deps=1
package=1
while [ $# -gt 0 ]; do
    case "$1" in
        --beam-image-pins) [ $# -ge 2 ] || usage; base_pins=$2; shift 2 ;;
        --lock) [ $# -ge 2 ] || usage; lock=$2; shift 2 ;;
        --deps-only) package=0; shift ;;
        --package-only) deps=0; shift ;;
        -h | --help) usage ;;
        *) echo "install_worker_env.sh: unknown argument $1" >&2; usage ;;
    esac
done
[ "$deps$package" != 00 ] || { echo "install_worker_env.sh: --deps-only and --package-only exclude each other" >&2; exit 2; }

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
echo "install_worker_env.sh: installing into $(command -v python) ($(python --version 2>&1))" >&2

if [ "$deps" = 1 ]; then
    if [ -n "$base_pins" ]; then
        pip install --no-cache-dir -r "$base_pins"
    fi
    pip install --no-cache-dir -r "$lock"
fi

if [ "$package" = 1 ]; then
    pip install --no-cache-dir --no-deps .
    pip check
    # From / so that the installed package is imported, not the source tree beside this script.
    (cd / && python -c "import pipeline.job.scoring, apache_beam.io.gcp.gcsio")
    python deploy/check_beam_extras.py
fi
