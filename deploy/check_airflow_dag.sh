#!/usr/bin/env bash
# Checks deploy/airflow_dag.py with the real Airflow: builds (or reuses) a virtual environment with
# the versions pinned in deploy/airflow-requirements.txt and runs tests/test_airflow_dag.py in it.
# There the DAG file is parsed by a DagBag, its tasks are rendered for a scheduled run by the task
# runner, and its gate reads summaries through GCSHook from a Cloud Storage emulator on loopback.
# The summary reader the DAG imports is shipped as `make dag-files` ships it: schemas/summary.py
# copied as reviewscore_summary.py into a dags folder on the import path (Airflow puts its dags/
# folder there), so the check fails if the DAG needs anything else of reviewscore.
#
# Usage: deploy/check_airflow_dag.sh [PYTEST_ARGS...]
# The environment lives in ${REVIEWSCORE_CACHE:-~/.cache/reviewscore}/airflow-env/HASH, HASH the
# pin file's, and is reused while the pins are unchanged; a half-built one is rebuilt. It needs
# Python 3.11 (PYTHON, default python3.11) and a package registry only when it is built; uv
# (UV, default .venv/bin/uv, else uv on PATH) when available, else pip. Airflow writes its
# configuration and logs into a temporary AIRFLOW_HOME, removed afterwards.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
pins=deploy/airflow-requirements.txt
python=${PYTHON:-python3.11}
uv=${UV:-$root/.venv/bin/uv}
[ -x "$uv" ] || uv=$(command -v uv || true)

key=$(sha256sum "$pins" | cut -c1-16)
cache=${REVIEWSCORE_CACHE:-$HOME/.cache/reviewscore}/airflow-env
env=$cache/$key
mkdir -p "$cache"

build() {
    rm -rf "$env"
    echo "check_airflow_dag.sh: building the Airflow environment $env from $pins" >&2
    if [ -n "$uv" ]; then
        UV_PYTHON_DOWNLOADS=never "$uv" venv --quiet --python "$python" "$env"
        "$uv" pip sync --quiet --python "$env/bin/python" "$pins"
        "$uv" pip check --quiet --python "$env/bin/python"
    else
        "$python" -m venv "$env"
        "$env/bin/python" -m pip install --quiet --no-deps -r "$pins"
        "$env/bin/python" -m pip check
    fi
    "$env/bin/python" -c "import airflow, airflow.providers.google.cloud.operators.dataflow, gcp_storage_emulator"
    touch "$env/.complete"  # last: an interrupted build leaves no marker and is built again
}

# One build at a time (two checks started together would build into the same folder).
exec 9>"$env.lock"
flock 9
if [ -f "$env/.complete" ]; then
    echo "check_airflow_dag.sh: reusing the Airflow environment $env" >&2
else
    build
fi
flock -u 9

home=$(mktemp -d)
trap 'rm -rf "$home"' EXIT
mkdir "$home/dags"
cp schemas/summary.py "$home/dags/reviewscore_summary.py"
# --noconftest: tests/conftest.py imports reviewscore, which this environment does not have; the
# file's reviewscore half skips itself here, and the dev suite (make test) runs it.
AIRFLOW_HOME=$home AIRFLOW__CORE__LOAD_EXAMPLES=False PYTHONPATH=$home/dags \
    "$env/bin/python" -m pytest --noconftest -p no:cacheprovider -q tests/test_airflow_dag.py "$@"
