"""reviewscore's scoring package.

Importing it is cheap: TensorFlow and Beam load only where a command needs them, so `reviewscore
--help` and `reviewscore info` answer at once. `import pipeline.layers` registers the project's
custom Keras layers, after which any tool can load a bundle's bare model with
`keras.saving.load_model("BUNDLE/model.keras", safe_mode=True)`.
"""

import os
import time

from pipeline import native_log

# When the process started its real work: a job's wall time and reviews/s include every import.
STARTED = time.time()

# TensorFlow's native logging (C++ and absl, straight to stderr, past Python's logging) is noise for a
# batch job, and some of it is logged as an error: "oneDNN supports DT_BOOL only on platforms with
# AVX-512" is an E line (tensorflow/core/util/util.cc) on CPUs without AVX-512. Level 3 keeps only
# fatal lines; set before TensorFlow is first imported. A level the user chose is kept, and the
# CLI's --verbose lowers ours to 0 (pipeline/cli/common.py, quiet_logging).
TF_LOG_LEVEL_CHOSEN_BY_USER = "TF_CPP_MIN_LOG_LEVEL" in os.environ
QUIET_TF_LOG_LEVEL = "3"
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", QUIET_TF_LOG_LEVEL)
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
# The lines TensorFlow's libraries print while loading ("oneDNN custom operations are on") come before
# its logging reads that level; pipeline/native_log.py holds them to it.
native_log.install()

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
