#!/usr/bin/env bash
# Regenerates deploy/beam_image_requirements.txt: the Python packages of the image this job's
# Dockerfile starts FROM (apache/beam_python3.11_sdk:2.77.0 on x86_64 Linux), so that
# deploy/worker_env.py can rehearse the image as a virtual environment without Docker.
#
# Beam's own recipe (sdks/python/container/run_generate_requirements.sh): install
# apache-beam[gcp,dataframe,test] and Beam's base_image_requirements_manual.txt into a fresh
# environment (after upgrading pip, setuptools and wheel) and freeze it. Here the same set is resolved
# with uv for Python 3.11 on x86_64 manylinux_2_28, as of the moment apache-beam 2.77.0 was published
# on PyPI (uv's --exclude-newer), so nothing newer than the image can be in it and a rerun gives the
# same file. Unlike Beam's file it keeps apache-beam itself, which the image also has.
#
# Usage (from anywhere): deploy/beam_image_pins.sh   (make beam-image-pins)
#   UV=path/to/uv to use another uv than .venv/bin/uv.
set -euo pipefail
cd "$(dirname "$0")/.."

BEAM_VERSION=2.77.0
PYTHON_VERSION=3.11
PLATFORM=x86_64-manylinux_2_28
# apache-beam 2.77.0's files reached PyPI between 10:22:47 and 10:23:39 UTC on 2026-10-07 (uv says
# "v2.77.0 was published at 2026-10-07T10:22:47Z" when an earlier cut-off hides it).
PUBLISHED=2026-10-07T10:24:00Z
OUT=deploy/beam_image_requirements.txt
UV=${UV:-.venv/bin/uv}

inputs=$(mktemp -d)
trap 'rm -rf "$inputs" "$OUT.tmp"' EXIT

echo "apache-beam[gcp,dataframe,test]==$BEAM_VERSION" > "$inputs/beam.in"
# Beam's run_generate_requirements.sh upgrades these before it installs anything.
printf '%s\n' pip setuptools wheel > "$inputs/tools.in"
# Beam's sdks/python/container/base_image_requirements_manual.txt as of 2.77.0, as far as it could be
# traced: the list of Beam's tree (nose and python-snappy since dropped from it, google-crc32c added)
# checked against the package sets of Beam's py311 images of 2026.
cat > "$inputs/manual.in" <<'EOF'
bs4
cython>=3,<4
future
google-cloud-profiler
guppy3
mmh3
nltk
google-crc32c
scipy
scikit-learn
build>=1.0,<2
EOF

command="deploy/beam_image_pins.sh (make beam-image-pins)"
{
    echo "# The Python packages of apache/beam_python${PYTHON_VERSION}_sdk:${BEAM_VERSION} (x86_64 Linux), the image"
    echo "# deploy/Dockerfile starts FROM, pinned by Beam's recipe: apache-beam[gcp,dataframe,test]==${BEAM_VERSION}"
    echo "# with Beam's base_image_requirements_manual.txt, and pip, setuptools and wheel, resolved for"
    echo "# Python ${PYTHON_VERSION} on ${PLATFORM} as of apache-beam ${BEAM_VERSION}'s release (${PUBLISHED})."
    echo "# deploy/install_worker_env.sh installs it first when there is no Beam image underneath"
    echo "# (deploy/worker_env.py's rehearsal of the image); the image itself already has it."
    echo "# Do not edit: regenerate with ${command}, which runs"
    echo "#   uv pip compile beam.in tools.in manual.in --python-version ${PYTHON_VERSION} \\"
    echo "#     --python-platform ${PLATFORM} --exclude-newer ${PUBLISHED} --no-header --no-annotate"
    echo
    "$UV" pip compile "$inputs/beam.in" "$inputs/tools.in" "$inputs/manual.in" \
        --python-version "$PYTHON_VERSION" --python-platform "$PLATFORM" \
        --exclude-newer "$PUBLISHED" --no-header --no-annotate --quiet
} > "$OUT.tmp"
mv "$OUT.tmp" "$OUT"
echo "wrote $OUT ($(grep -c '^[A-Za-z0-9]' "$OUT") packages)" >&2
