"""The files that build the Dataflow image and pin its dependencies, checked against each other.

No Docker engine runs here, so the image is not built in the test suite (README, "Running on
Dataflow", says what was verified how). What can be checked without one is checked: the image's
entrypoint and launcher wiring, that every file it copies exists, that the lock files agree with
pyproject.toml and with each other.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parent.parent
DOCKERFILE = ROOT / "deploy" / "Dockerfile"


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
    installs = [args for op, args in steps if op == "RUN" and "pip install" in args]
    assert "-r requirements.lock" in installs[0]
    assert all("--no-deps" in args for args in installs[1:]), "the package itself must not re-resolve versions"


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
