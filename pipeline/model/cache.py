"""Where reviewscore keeps what it computes once and reuses across runs (trained word vectors, by a
fingerprint of their text and settings).

A module of its own, with nothing to import, so that the CLI's defaults (read for `--help`) and
training name the same folder.
"""

from pathlib import Path

DEFAULT_CACHE_DIR = Path.home() / ".cache" / "reviewscore"
