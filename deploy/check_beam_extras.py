"""Checks that the installed apache-beam's extras that Beam's SDK image provides are still satisfied.

Beam's image ships apache-beam with its `gcp` and `dataframe` extras installed. Installing the job's
lock over it can move a package out of an extra's range (requirements.lock once pinned pandas 3.1.1,
where Beam's `dataframe` extra needs pandas<2.4): `pip check` does not see it, since it checks only
what installed packages require unconditionally, but `import apache_beam.dataframe` then fails.
This reads the requirements of each extra, and of the extras those name, from the installed
packages' metadata and compares them with the installed versions. One line per unmet requirement
on stdout, exit status 1 if there is any.

Usage: python deploy/check_beam_extras.py [--extras gcp,dataframe]
deploy/install_worker_env.sh runs it after `pip check`, in the image and in its rehearsal.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Iterable
from importlib import metadata

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

BEAM = "apache-beam"
IMAGE_EXTRAS = ("gcp", "dataframe")
"""Beam's extras that its SDK image installs and this job's image must keep working."""


def installed_version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def installed_requires(name: str) -> list[str]:
    try:
        return metadata.requires(name) or []
    except metadata.PackageNotFoundError:
        return []


def extra_requirements(requires: Iterable[str], extra: str) -> list[Requirement]:
    """The requirements that `extra` adds: those whose marker holds with the extra and not without."""
    found = []
    for text in requires:
        requirement = Requirement(text)
        marker = requirement.marker
        if marker is not None and marker.evaluate({"extra": extra}) and not marker.evaluate({"extra": ""}):
            found.append(requirement)
    return found


def violations(
    dist: str,
    extras: Iterable[str],
    version_of: Callable[[str], str | None] = installed_version,
    requires_of: Callable[[str], list[str]] = installed_requires,
) -> list[str]:
    """One line for each requirement of `dist`'s `extras` (and of the extras they name in turn) that
    the installed versions do not meet; the lookups are parameters so a test can pass pinned sets."""
    problems: list[str] = []
    seen: set[tuple[str, str]] = set()
    pending = [(canonicalize_name(dist), extra) for extra in extras]
    while pending:
        name, extra = pending.pop(0)
        if (name, extra) in seen:
            continue
        seen.add((name, extra))
        if version_of(name) is None:
            problems.append(f"{name}[{extra}]: {name} is not installed")
            continue
        for requirement in extra_requirements(requires_of(name), extra):
            wanted = canonicalize_name(requirement.name)
            have = version_of(wanted)
            spec = f"{requirement.name}{requirement.specifier}"
            if have is None:
                problems.append(f"{name}[{extra}] requires {spec}, which is not installed")
            elif not requirement.specifier.contains(have, prereleases=True):
                problems.append(f"{name}[{extra}] requires {spec}, but {wanted} {have} is installed")
            else:
                pending.extend((wanted, nested) for nested in sorted(requirement.extras))
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--extras", default=",".join(IMAGE_EXTRAS), help="comma-separated (default: %(default)s)")
    args = parser.parse_args(argv)
    extras = [extra.strip() for extra in args.extras.split(",") if extra.strip()]
    problems = violations(BEAM, extras)
    for line in problems:
        print(line)
    if problems:
        return 1
    print(f"{BEAM} {installed_version(BEAM)}: the requirements of its extras {', '.join(extras)} are met")
    return 0


if __name__ == "__main__":
    sys.exit(main())
