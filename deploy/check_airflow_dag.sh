#!/usr/bin/env bash
# Checks the nightly DAG with the real Airflow 2 and 3: for each pin file (deploy/airflow2-requirements.txt,
# Airflow 2; deploy/airflow-requirements.txt, Airflow 3) it builds (or reuses) a virtual environment
# with those versions and runs tests/test_airflow_dag.py in it twice, with `[operators]
# default_deferrable` False and True (AIRFLOW__OPERATORS__DEFAULT_DEFERRABLE, which the provider's
# operators read as their default). There the DAG file is parsed by a DagBag, its tasks are rendered
# for a scheduled run, its sensors and gate run against a Cloud Storage emulator on loopback. The dags
# folder is what `make dag-files` ships (the DAG and the standard-library modules it imports), so the
# check fails if the DAG needs anything else of reviewscore.
#
# Usage: deploy/check_airflow_dag.sh [PYTEST_ARGS...]
# PINS (default: both pin files) narrows the matrix to some pin files, DEFERRABLE (default "False True")
# to some settings. Each environment lives in ${REVIEWSCORE_CACHE:-~/.cache/reviewscore}/airflow-env/HASH,
# HASH its pin file's, and is reused while the pins are unchanged; a half-built one is rebuilt. It needs
# Python 3.11 (PYTHON, default python3.11) and a package registry only when it is built; uv (UV,
# default .venv/bin/uv, else uv on PATH) when available, else pip. Airflow writes its configuration
# and logs into a temporary AIRFLOW_HOME, removed afterwards. Exit code: pytest's first failure's, else 0.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
pin_files=${PINS:-deploy/airflow2-requirements.txt deploy/airflow-requirements.txt}
deferrable_settings=${DEFERRABLE:-False True}
python=${PYTHON:-python3.11}
uv=${UV:-$root/.venv/bin/uv}
[ -x "$uv" ] || uv=$(command -v uv || true)
cache=${REVIEWSCORE_CACHE:-$HOME/.cache/reviewscore}/airflow-env
mkdir -p "$cache"

build() { # ENV PINS
    rm -rf "$1"
    echo "check_airflow_dag.sh: building the Airflow environment $1 from $2" >&2
    if [ -n "$uv" ]; then
        UV_PYTHON_DOWNLOADS=never "$uv" venv --quiet --python "$python" "$1"
        "$uv" pip sync --quiet --python "$1/bin/python" "$2"
        "$uv" pip check --quiet --python "$1/bin/python"
    else
        "$python" -m venv "$1"
        "$1/bin/python" -m pip install --quiet --no-deps -r "$2"
        "$1/bin/python" -m pip check
    fi
    "$1/bin/python" -c "import airflow, airflow.providers.google.cloud.operators.dataflow, gcp_storage_emulator"
    touch "$1/.complete"  # last: an interrupted build leaves no marker and is built again
}

environment() { # PINS: prints the environment's path, built unless already complete
    local env
    env=$cache/$(sha256sum "$1" | cut -c1-16)
    # One build at a time (two checks started together would build into the same folder).
    exec 9>"$env.lock"
    flock 9
    if [ -f "$env/.complete" ]; then
        echo "check_airflow_dag.sh: reusing the Airflow environment $env ($1)" >&2
    else
        build "$env" "$1" >&2
    fi
    flock -u 9
    echo "$env"
}

home=$(mktemp -d)
trap 'rm -rf "$home"' EXIT
make -s dag-files DAGS="$home/dags" >/dev/null

status=0
for pins in $pin_files; do
    env=$(environment "$pins")
    version=$("$env/bin/python" -c "import importlib.metadata as m; print(m.version('apache-airflow'))")
    for deferrable in $deferrable_settings; do
        echo "check_airflow_dag.sh: Airflow $version, default_deferrable=$deferrable" >&2
        rm -rf "$home/airflow" && mkdir "$home/airflow"
        # --noconftest: tests/conftest.py imports reviewscore, which this environment does not have;
        # the file's reviewscore half skips itself here, and the dev suite (make test) runs it.
        AIRFLOW_HOME=$home/airflow AIRFLOW__CORE__LOAD_EXAMPLES=False AIRFLOW__CORE__DAGS_FOLDER=$home/dags \
            AIRFLOW__OPERATORS__DEFAULT_DEFERRABLE=$deferrable REVIEWSCORE_DAGS=$home/dags PYTHONPATH=$home/dags \
            "$env/bin/python" -m pytest --noconftest -p no:cacheprovider -q tests/test_airflow_dag.py "$@" || {
            rc=$?
            [ "$status" -ne 0 ] || status=$rc
            echo "check_airflow_dag.sh: FAILED with Airflow $version, default_deferrable=$deferrable" >&2
        }
    done
done
exit "$status"
