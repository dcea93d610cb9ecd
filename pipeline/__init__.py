"""reviewscore's scoring package.

Three layers, each importing only those below it: `pipeline.cli` (every command) on `pipeline.job`
(the Beam job) on `pipeline.model` (the model library, no Beam), which `training` uses too.
Importing any of them is cheap and changes nothing in the process: TensorFlow and Beam load only
where a command needs them, so `reviewscore --help` and `reviewscore info` answer at once.
`import pipeline.model.layers` registers the project's custom Keras layers, which Keras needs to
rebuild a bundle's bare model (`pipeline.model.bundle.Bundle.open("BUNDLE").load_model()`).
"""

import time

# When the process started its real work: a job's wall time and reviews/s include every import.
STARTED = time.time()

DISTRIBUTION = "reviewscore"
"""The distribution's name in pyproject.toml, whose `version` is the one place the version is written."""


def _version() -> str:
    """The installed distribution's version; in a source tree run without installing, pyproject.toml's."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(DISTRIBUTION)
    except PackageNotFoundError:
        import tomllib
        from pathlib import Path

        pyproject = Path(__file__).resolve().parent.parent / "pyproject.toml"
        try:
            return tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]["version"]
        except (OSError, KeyError, tomllib.TOMLDecodeError):
            return "unknown"


def __getattr__(name: str) -> str:
    """`pipeline.__version__`, read on first use: the metadata lookup is not paid by `--help`."""
    if name == "__version__":
        globals()["__version__"] = found = _version()
        return found
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
