"""The optional parts of reviewscore (pyproject.toml's extras), and the one way their absence is reported.

The scoring install has neither TensorFlow nor Google Cloud's client libraries. A command that
needs one meets it as an ImportError somewhere deep in a library (Beam's GCS filesystem, Keras);
each place that knows it needs an extra calls `require` first, and the console entry point turns
any ImportError of an extra's module that still gets through into the same line (`missing_extra`):
which extra, for what, and the install command. Exit code 2, as for any configuration mistake.

Cheap to import (the standard library only): the entry point reads it before any command runs.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

__all__ = ["EXTRAS", "GCP", "TRAIN", "Extra", "MissingExtra", "missing_extra", "require"]

CHECKOUT = Path(__file__).resolve().parents[2]
"""The folder above the package: a clone of the repository where the package is installed from one."""


@dataclass(frozen=True)
class Extra:
    """One of pyproject.toml's optional-dependencies, as a message names it."""

    name: str
    """The extra's name in pyproject.toml."""
    needed_for: str
    """What needs it, as a message's subject ("gs:// paths")."""
    modules: tuple[str, ...]
    """Import names it provides: any one of them missing means the extra is not installed."""
    lock: str
    """The lock file that pins it (the versions the image runs and the tests pass with)."""

    def installed(self) -> bool:
        return all(_found(module) for module in self.modules)

    def provides(self, module: str) -> bool:
        """Does this extra install `module` (an import name, possibly a submodule of one it names)?"""
        return any(module == name or module.startswith(name + ".") for name in self.modules)

    def install_command(self) -> str:
        """How to add it: into the clone the package runs from (the README's editable install), else by name."""
        if (CHECKOUT / "pyproject.toml").is_file():
            return f"pip install -c {self.lock} -e '.[{self.name}]' in the repository's folder"
        return f"pip install 'reviewscore[{self.name}]'"

    def install_hint(self) -> str:
        """A remedy among others, as a message lists it: "install the train extra (pip install ...)"."""
        return f"install the {self.name} extra ({self.install_command()})"

    def missing(self) -> str:
        """The one line for its absence: what needs it, the extra, the command."""
        return f"{self.needed_for} need the {self.name} extra, which is not installed: {self.install_command()}"


GCP = Extra(
    "gcp",
    "gs:// paths (and Dataflow)",
    ("google.api_core", "google.auth", "google.cloud.storage", "apitools"),
    "requirements.lock",
)
TRAIN = Extra(
    "train",
    "training, export-onnx, the xla and keras engines and integrated gradients",
    ("tensorflow", "keras", "onnx", "matplotlib", "gensim", "sklearn", "scipy"),
    "requirements-tensorflow.lock",
)
EXTRAS = (GCP, TRAIN)
"""The extras a command may need (pyproject.toml also has `docs` and `dev`, which no command imports)."""


class MissingExtra(ValueError):
    """An optional part this command needs is not installed (exit code 2)."""


def require(extra: Extra) -> None:
    """MissingExtra, naming the extra and its install command, where `extra` is not installed."""
    if not extra.installed():
        raise MissingExtra(extra.missing())


def missing_extra(error: ImportError) -> MissingExtra | None:
    """The MissingExtra an ImportError stands for, if the module it failed on is an extra's."""
    name = getattr(error, "name", None) or ""
    for extra in EXTRAS:
        if extra.provides(name):
            return MissingExtra(extra.missing())
    return None


def _found(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # a parent package missing or broken
        return False
