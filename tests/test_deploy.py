"""The files that build the Dataflow image and pin its dependencies, checked against each other.

No Docker engine runs here, so the image is not built in the test suite (docs/production.md, "The rehearsal",
says what was verified how). What can be checked without one is checked: the image's
entrypoint and launcher wiring, that every file it copies exists, that it installs through the one
script its rehearsal (deploy/worker_env.py) also runs, that the lock files agree with pyproject.toml
and with each other, and that installed over Beam's image (deploy/beam_image_requirements.txt) they
keep the Beam extras that image ships.
"""

from __future__ import annotations

import importlib.util
import os
import re
import tomllib
from importlib import metadata
from pathlib import Path

import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parent.parent
DOCKERFILE = ROOT / "deploy" / "Dockerfile"
INSTALL_SCRIPT = ROOT / "deploy" / "install_worker_env.sh"
BEAM_IMAGE_PINS = ROOT / "deploy" / "beam_image_requirements.txt"


def load_deploy_module(name: str):
    """A script of deploy/ (not a package) as a module."""
    spec = importlib.util.spec_from_file_location(f"deploy_{name}", ROOT / "deploy" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def instructions(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of a Dockerfile, continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n", " ", path.read_text())
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.strip().startswith("#")]
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1]) for line in lines]


LOCKS = ["requirements.lock", "requirements-tensorflow.lock"]
"""The image locks, smallest first: Dockerfile's LOCK build argument picks one."""


def pins(lock: Path) -> dict[str, str]:
    found = {}
    for line in lock.read_text().splitlines():
        match = re.match(r"^([A-Za-z0-9_.\-]+)(\[[^\]]*\])?==([^\s;]+)", line)
        if match:
            found[canonicalize_name(match.group(1))] = match.group(3)
    return found


def test_image_starts_beams_boot_and_names_the_launchers_file():
    steps = instructions(DOCKERFILE)
    entrypoints = [args for op, args in steps if op == "ENTRYPOINT"]
    assert entrypoints == ['["/opt/apache/beam/boot"]'], "workers start the SDK harness through Beam's boot"
    froms = [args for op, args in steps if op == "FROM"]
    assert froms[-1].startswith("apache/beam_python") and "template-launcher-base" in froms[0]
    assert all("@${" in image and image.split("@${", 1)[1].startswith(("LAUNCHER_DIGEST}", "BEAM_DIGEST}"))
               for image in froms), "each base image is named by digest (NAME:TAG@sha256:...)"  # fmt: skip
    launcher = "/opt/google/dataflow/python_template_launcher"
    assert any(op == "COPY" and args.startswith("--from=launcher") and launcher in args for op, args in steps)

    env = dict(re.match(r"(\w+)=(\S+)", args).groups() for op, args in steps if op == "ENV")
    assert "FLEX_TEMPLATE_PYTHON_SETUP_FILE" not in env and "FLEX_TEMPLATE_PYTHON_REQUIREMENTS_FILE" not in env, (
        "either would make every worker build and install the package at start-up"
    )
    workdir = next(args for op, args in steps if op == "WORKDIR")
    py_file = Path(env["FLEX_TEMPLATE_PYTHON_PY_FILE"]).relative_to(workdir)
    copied = {args.split()[-1] for op, args in steps if op == "COPY" and not args.startswith("--from")}
    assert py_file.as_posix() in copied and (ROOT / py_file).is_file()


def test_every_file_the_image_copies_exists_and_dependencies_come_from_the_lock():
    steps = instructions(DOCKERFILE)
    for op, args in steps:
        if op == "COPY" and not args.startswith("--from"):
            for source in args.split()[:-1]:
                for lock in LOCKS if source == "${LOCK}" else [source]:
                    assert (ROOT / lock).exists(), f"COPY {lock}: missing from the repository"


def final_stage(steps: list[tuple[str, str]]) -> list[tuple[str, str]]:
    last_from = max(i for i, (op, _) in enumerate(steps) if op == "FROM")
    return steps[last_from + 1 :]


def test_the_image_installs_through_the_script_its_rehearsal_runs():
    """deploy/install_worker_env.sh is the only thing that installs: the Dockerfile runs it, in two
    layers so a code change reuses the dependencies, and deploy/worker_env.py runs the same file."""
    stage = final_stage(instructions(DOCKERFILE))
    runs = [(i, args) for i, (op, args) in enumerate(stage) if op == "RUN"]
    assert [args for _, args in runs] == [
        "deploy/install_worker_env.sh --lock requirements.lock --deps-only",
        "deploy/install_worker_env.sh --package-only",
    ], "no other RUN may install anything: the rehearsal would not see it"
    (deps_at, _), (package_at, _) = runs
    copied_at = {args.split()[-1]: i for i, (op, args) in enumerate(stage) if op == "COPY"}
    assert copied_at["requirements.lock"] < deps_at and copied_at["deploy/install_worker_env.sh"] < deps_at
    for code in ("pipeline", "training", "schemas", "deploy/flex_main.py", "deploy/check_beam_extras.py"):
        assert deps_at < copied_at[code] < package_at, f"{code}: copy it between the two installs"

    assert os.access(INSTALL_SCRIPT, os.X_OK), "RUN deploy/install_worker_env.sh needs the executable bit"
    script = INSTALL_SCRIPT.read_text()
    assert script.startswith("#!/usr/bin/env bash\n") and "set -euo pipefail" in script
    steps_in_order = [
        'pip install --no-cache-dir -r "$base_pins"',
        'pip install --no-cache-dir -r "$lock"',
        "pip install --no-cache-dir --no-deps .",
        "pip check",
        'python -c "import pipeline.job.scoring, apache_beam.io.gcp.gcsio"',
        "python deploy/check_beam_extras.py",
    ]
    commands = "\n".join(line for line in script.splitlines() if not line.lstrip().startswith("#"))
    positions = [commands.index(step) for step in steps_in_order]
    assert positions == sorted(positions), "install_worker_env.sh's steps are out of order"
    assert 'lock="requirements.lock"' in script, "the default lock is the image's default"
    assert "uv " not in commands, "plain pip, as in the image"

    rehearsal = (ROOT / "deploy" / "worker_env.py").read_text()
    assert '"install_worker_env.sh"' in rehearsal and '"beam_image_requirements.txt"' in rehearsal


def test_the_image_does_not_name_itself():
    """Workers take the image the template names by digest (tests/test_setup_gcp.py): a reference baked in at
    build would keep pointing at the old image after a retag or a promotion."""
    stage = final_stage(instructions(DOCKERFILE))
    assert not [args for op, args in stage if op == "ENV" and "IMAGE" in args.split("=", 1)[0]]
    assert not [args for op, args in instructions(DOCKERFILE) if op == "ARG" and args.split("=", 1)[0] == "IMAGE"]
    build = yaml.safe_load((ROOT / "deploy" / "cloudbuild.yaml").read_text())["steps"][0]["args"]
    assert "--build-arg" not in build


def test_beam_image_pins_are_those_of_the_image_the_dockerfile_starts_from():
    args = {
        name: value
        for op, text in instructions(DOCKERFILE)
        if op == "ARG" and "=" in text
        for name, value in [text.split("=", 1)]
    }
    base = pins(BEAM_IMAGE_PINS)
    assert base["apache-beam"] == args["BEAM_VERSION"] == pins(ROOT / "requirements.lock")["apache-beam"]
    header = BEAM_IMAGE_PINS.read_text().split("\n\n", 1)[0]
    assert f"apache/beam_python{args['PYTHON_VERSION']}_sdk:{args['BEAM_VERSION']}" in header
    assert "deploy/beam_image_pins.sh" in header, "the header names the command that regenerates it"
    regenerate = ROOT / "deploy" / "beam_image_pins.sh"
    assert f"BEAM_VERSION={args['BEAM_VERSION']}" in regenerate.read_text() and os.access(regenerate, os.X_OK)
    assert {"pandas", "google-cloud-storage", "pip", "setuptools"} <= set(base)


def test_each_lock_installed_over_beams_image_keeps_its_extras_met():
    """What pip check cannot see: the lock must not move a package out of the range of a Beam extra
    the image ships (a lock with pandas 3 broke apache_beam.dataframe, whose extra needs <2.4)."""
    extras = load_deploy_module("check_beam_extras")
    locked_beam = pins(ROOT / "requirements.lock")["apache-beam"]
    assert metadata.version("apache-beam") == locked_beam, "apache-beam's metadata is read from this environment"
    for lock in LOCKS:
        image = {**pins(BEAM_IMAGE_PINS), **pins(ROOT / lock)}
        problems = extras.violations("apache-beam", extras.IMAGE_EXTRAS, version_of=image.get)
        assert problems == [], (lock, problems)


def test_the_extras_check_names_each_unmet_requirement():
    extras = load_deploy_module("check_beam_extras")
    requires = {
        "apache-beam": [
            "numpy<2.5.0,>=1.14.3",
            'pandas!=1.5.0,!=1.5.1,<2.4,>=1.4.3; extra == "dataframe"',
            'google-cloud-storage<4,>=2.18.2; extra == "gcp"',
            'cloud-sql-python-connector[pg8000]<2,>=1.0; extra == "gcp"',
            'google-apitools>=0.5.35; python_version >= "3.99" and extra == "gcp"',
            'pytest<10; extra == "test"',
        ],
        "cloud-sql-python-connector": ['pg8000>=1.31.1; extra == "pg8000"'],
    }
    good = {"apache-beam": "2.77.0", "numpy": "2.4.6", "pandas": "2.3.3", "google-cloud-storage": "3.17.1"}
    good |= {"cloud-sql-python-connector": "1.23.0", "pg8000": "1.31.6"}

    def check(installed):
        return extras.violations(
            "apache-beam", ["gcp", "dataframe"], installed.get, lambda name: requires.get(name, ())
        )

    assert check(good) == []
    assert check(good | {"pandas": "3.1.1", "numpy": "9"}) == [
        "apache-beam[dataframe] requires pandas!=1.5.0,!=1.5.1,<2.4,>=1.4.3, but pandas 3.1.1 is installed"
    ], "one line per unmet requirement of an extra; the core requirements are pip check's"
    assert check({k: v for k, v in good.items() if k != "pg8000"}) == [
        "cloud-sql-python-connector[pg8000] requires pg8000>=1.31.1, which is not installed"
    ]


def test_locks_pin_every_dependency_pyproject_asks_for():
    """A dependency bumped in pyproject.toml without `make lock` fails here."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    wanted = {
        "requirements.lock (image)": project["dependencies"] + extras["gcp"],
        "requirements-tensorflow.lock (image with TensorFlow)": project["dependencies"]
        + extras["gcp"]
        + extras["train"],
        "requirements-dev.lock (make install)": extras["dev"],
    }
    for lock_name, requirements in wanted.items():
        locked = pins(ROOT / lock_name.split()[0])
        for text in requirements:
            requirement = Requirement(text)
            name = canonicalize_name(requirement.name)
            if name == "reviewscore":
                continue
            assert name in locked, f"{requirement.name} is not in {lock_name}"
            assert requirement.specifier.contains(locked[name], prereleases=True), (
                f"{lock_name} pins {name}=={locked[name]}, outside pyproject's {requirement.specifier}"
            )


def test_dev_lock_agrees_with_the_image_locks():
    """Tests run on the versions the images ship: each lock is compiled under the one before it."""
    for smaller, larger in zip(LOCKS, [*LOCKS[1:], "requirements-dev.lock"], strict=True):
        runtime, dev = pins(ROOT / smaller), pins(ROOT / larger)
        assert {name: (v, dev.get(name)) for name, v in runtime.items() if dev.get(name) != v} == {}, (smaller, larger)


def test_the_default_image_has_no_tensorflow():
    locked = pins(ROOT / "requirements.lock")
    assert "onnxruntime" in locked and not {"tensorflow", "tensorflow-cpu", "keras"} & set(locked)


def test_cloud_build_builds_this_dockerfile_and_checks_the_image():
    config = yaml.safe_load((ROOT / "deploy" / "cloudbuild.yaml").read_text())
    build, check = config["steps"]
    assert build["args"][:3] == ["build", "-f", "deploy/Dockerfile"] and build["args"][-1] == "."
    script = check["args"][-1]
    assert check["name"] == "${_IMAGE}" and "/opt/apache/beam/boot" in script and "python_template_launcher" in script
    # A lone $ is a Cloud Build substitution; a shell variable must be written $$NAME.
    assert not re.search(r"(?<!\$)\$(?!\$|\{_IMAGE\})[A-Z_]", script)
    assert config["images"] == ["${_IMAGE}"]


def test_every_package_of_the_project_is_installed():
    """A non-editable install (the image's `pip install .`) ships only the packages pyproject lists:
    a new subpackage left out would import in the tests (editable) and fail on the workers."""
    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {
        ".".join(init.parent.relative_to(ROOT).parts)
        for top in ("pipeline", "training", "schemas")
        for init in (ROOT / top).rglob("__init__.py")
    }
    assert found - listed == set(), "add these to [tool.setuptools] packages in pyproject.toml"
