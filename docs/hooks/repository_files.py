"""MkDocs hook: files outside docs/ that pages show, published under their repository path.

BENCHMARKS.md (included whole by benchmarks.md) and the drift page show images that live beside the
code that makes them; publishing them from there keeps one copy of each and keeps their links working
both on GitHub and in the built site.
"""

from __future__ import annotations

from pathlib import Path

from mkdocs.structure.files import File

SHOWN = ("benchmarks/scaling.png", "examples/report.png")
"""Repository paths, relative to mkdocs.yml; each is served at the same path under the site root."""


def on_files(files, config):
    root = Path(config.config_file_path).parent
    for path in SHOWN:
        files.append(File.generated(config, path, abs_src_path=str(root / path)))
    return files
