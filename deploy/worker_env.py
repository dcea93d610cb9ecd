"""Builds, or reuses, a rehearsal of the job's worker image: a Python 3.11 virtual environment
installed by deploy/install_worker_env.sh, the script deploy/Dockerfile runs, so the two cannot drift.

No Docker engine runs here, so instead of Beam's SDK image underneath there is its package set
(deploy/beam_image_requirements.txt, `make beam-image-pins`), installed first; then the lock, then
the package, then the image's checks (pip check, the import check, Beam's extras).

The environment is cached at ${REVIEWSCORE_CACHE:-~/.cache/reviewscore}/worker-env/KEY, KEY a hash
of the pin file, the lock, the interpreter's version and the install script: it is built (minutes)
only when none with that key is complete. A change of code needs no rebuild: every run, cold or
warm, reinstalls the package and reruns the checks (`--package-only`, like the image's second
layer), which takes seconds.

Usage: python deploy/worker_env.py [--lock requirements.lock] [--python python3.11] [--rebuild]
The install's output goes to stderr; the last line on stdout is the environment's python.
"""

from __future__ import annotations

import argparse
import fcntl
import hashlib
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
INSTALL = ROOT / "deploy" / "install_worker_env.sh"
BEAM_IMAGE_PINS = ROOT / "deploy" / "beam_image_requirements.txt"
MARKER = ".reviewscore-worker-env"
"""Written into an environment once its dependencies are in: without it, a directory is a broken build."""


def cache_root() -> Path:
    return Path(os.environ.get("REVIEWSCORE_CACHE") or Path.home() / ".cache" / "reviewscore") / "worker-env"


def interpreter_version(python: str) -> str:
    try:
        out = subprocess.run(
            [python, "-c", "import sys; print(sys.version)"], check=True, capture_output=True, text=True
        )
    except (OSError, subprocess.CalledProcessError) as e:
        raise SystemExit(f"worker_env: cannot run {python}: {e}") from None
    return out.stdout.strip()


def env_key(lock: Path, python_version: str) -> str:
    digest = hashlib.sha256()
    for part in (BEAM_IMAGE_PINS.read_bytes(), lock.read_bytes(), python_version.encode(), INSTALL.read_bytes()):
        digest.update(hashlib.sha256(part).digest())
    return digest.hexdigest()[:16]


def install(env: Path, *args: str) -> None:
    """Runs the install script with `env` activated (first on PATH), its output on our stderr."""
    variables = {**os.environ, "VIRTUAL_ENV": str(env), "PATH": f"{env / 'bin'}{os.pathsep}{os.environ['PATH']}"}
    variables.pop("PYTHONHOME", None)
    started = time.monotonic()
    subprocess.run([str(INSTALL), *args], check=True, env=variables, stdout=sys.stderr, cwd=ROOT)
    print(f"worker_env: install_worker_env.sh {' '.join(args)}: {time.monotonic() - started:.0f}s", file=sys.stderr)


def build(env: Path, python: str, lock: Path) -> None:
    if env.exists():
        shutil.rmtree(env)
    subprocess.run([python, "-m", "venv", str(env)], check=True, stdout=sys.stderr)
    install(env, "--beam-image-pins", str(BEAM_IMAGE_PINS), "--lock", str(lock), "--deps-only")
    (env / MARKER).write_text(f"pins {BEAM_IMAGE_PINS.name}\nlock {lock}\npython {interpreter_version(python)}\n")


def prepare(lock: Path, python: str = "python3.11", rebuild: bool = False) -> Path:
    """The environment's python, its dependencies built if need be and the package freshly installed."""
    version = interpreter_version(python)
    if not version.startswith("3.11."):
        raise SystemExit(f"worker_env: {python} is Python {version.split()[0]}; the image's is 3.11")
    root = cache_root()
    root.mkdir(parents=True, exist_ok=True)
    env = root / env_key(lock, version)
    with open(root / f"{env.name}.lock", "w") as guard:
        fcntl.flock(guard, fcntl.LOCK_EX)  # one build of an environment at a time
        if rebuild or not (env / MARKER).exists():
            print(f"worker_env: building {env} ({lock.name}; minutes)", file=sys.stderr)
            build(env, python, lock)
        else:
            print(f"worker_env: reusing {env} ({lock.name})", file=sys.stderr)
        install(env, "--package-only")
    return env / "bin" / "python"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lock", type=Path, default=ROOT / "requirements.lock", help="default: %(default)s")
    parser.add_argument("--python", default="python3.11", help="the interpreter to build from (default: %(default)s)")
    parser.add_argument("--rebuild", action="store_true", help="build the environment anew even if one is cached")
    args = parser.parse_args(argv)
    try:
        python = prepare(args.lock.resolve(strict=True), args.python, args.rebuild)
    except FileNotFoundError as e:
        raise SystemExit(f"worker_env: {e.filename}: no such file") from None
    except subprocess.CalledProcessError as e:
        raise SystemExit(f"worker_env: {' '.join(map(str, e.cmd))} failed (exit {e.returncode})") from None
    print(python)


if __name__ == "__main__":
    main()
