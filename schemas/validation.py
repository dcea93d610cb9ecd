"""One line from a pydantic ValidationError, for the files reviewscore reads through its models.

A file a user can hand reviewscore (a bundle's manifest.json, calibration.json, preprocessing.json,
profile.json) is refused with one line naming the file and what is wrong, never pydantic's
multi-line report. A model's own validators raise the file's error class with their message; what
pydantic itself finds (a missing key, a wrong type, an unknown setting) is worded here, the same way
for every file.
"""

from __future__ import annotations

from typing import TypeVar

from pydantic import ValidationError

FileError = TypeVar("FileError", bound=Exception)


def refusal(error: ValidationError, kind: type[FileError], file: str) -> FileError:
    """The first problem of `error` as a `kind`: the validator's own error where one raised it, else one
    line naming `file`, where in it, and what pydantic found."""
    problem = error.errors(include_url=False)[0]
    raised = problem.get("ctx", {}).get("error")
    if isinstance(raised, kind):
        return raised
    where = ".".join(str(part) for part in problem["loc"])
    if problem["type"] == "missing":
        return kind(f"{file} lacks {where!r}")
    if problem["type"] == "extra_forbidden":
        return kind(f"{file} has an unknown setting {where!r}")
    if isinstance(raised, Exception):
        return kind(f"{file} '{where}': {raised}" if where else f"{file}: {raised}")
    return kind(f"{file} '{where}' is {problem['input']!r}: {problem['msg']}")
