"""The job's image reference, fixed when it is built, and the Flex Template spec that names it.

One reference, by digest: `make image` pushes the image under a tag (the commit) and then records
what that tag points to, `REPOSITORY@sha256:DIGEST`, in deploy/image.ref (`record`). Everything after
reads that file (`image`): `make template` writes the spec naming the digest both as the launcher's
image and as the workers' (`spec`: defaultEnvironment.sdkContainerImage, which the launcher hands to
the job as --sdk_container_image), and `make image-name` prints it for a launch from the command line.
A tag can be moved or pushed again; a digest cannot, so a template always starts the image it was
built for, and a promoted or retagged image changes nothing until a new template names it.

deploy/image.ref names one project's image, so it is not part of the repository (.gitignore); on
another machine, record it again (`make image-record TAG=...`) or pass IMAGE=REPOSITORY@sha256:...

`base-images` checks that deploy/Dockerfile starts FROM images pinned by digest, so two builds of one
commit start from the same bytes. Standard library only: it runs with any Python 3.11.
Every error is one line on stderr and exit code 2.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
IMAGE_FILE = ROOT / "deploy" / "image.ref"
DOCKERFILE = ROOT / "deploy" / "Dockerfile"
METADATA = ROOT / "deploy" / "metadata.json"
EXIT_CONFIG_ERROR = 2
"""schemas/exit_codes.py's, written out: this script runs with any Python, outside the package's
environment and before it is installed, so it imports nothing of the project."""
DIGEST = re.compile(r"sha256:[0-9a-f]{64}")
REFERENCE = re.compile(r"(?P<repository>[a-z0-9][a-z0-9._:/-]*[a-z0-9])@(?P<digest>sha256:[0-9a-f]{64})")
"""REPOSITORY@sha256:DIGEST: the only form of reference a template or a launch may name."""


class ImageError(ValueError):
    """A missing, malformed or mismatched image reference (exit code 2)."""


def by_digest(reference: str) -> str:
    """The reference itself when it names a digest; otherwise ImageError naming the fix."""
    if not REFERENCE.fullmatch(reference):
        raise ImageError(
            f"image {reference!r} is not named by digest (REPOSITORY@sha256:...): a tag can move after the "
            "template is built; record the digest with 'make image-record TAG=...'"
        )
    return reference


def record(repository: str, tag: str, digest: str, path: Path = IMAGE_FILE) -> str:
    """Write REPOSITORY@DIGEST to `path` (whole or not at all) and return it."""
    digest = digest.strip()
    if not DIGEST.fullmatch(digest):
        raise ImageError(f"{repository}:{tag} has no digest ({digest!r}): was it pushed? Run 'make image' first")
    reference = by_digest(f"{repository}@{digest}")
    text = (
        "# The job's image by digest: written by make image (deploy/flex_template.py record), read by make\n"
        f"# template and make image-name. Pushed as {repository}:{tag}.\n{reference}\n"
    )
    partial = path.with_name(path.name + ".partial")
    partial.write_text(text, encoding="utf-8")
    os.replace(partial, path)
    return reference


def read(path: Path = IMAGE_FILE, repository: str | None = None) -> str:
    """The reference `path` records; ImageError when there is none, it is malformed, or it is an image
    of another repository than the one this project and region push to."""
    if not path.is_file():
        raise ImageError(
            f"{path.name} is missing: build the image first ('make image'), record a pushed one "
            "('make image-record TAG=...'), or pass IMAGE=REPOSITORY@sha256:..."
        )
    lines = [line.strip() for line in path.read_text(encoding="utf-8").splitlines()]
    references = [line for line in lines if line and not line.startswith("#")]
    if len(references) != 1:
        raise ImageError(f"{path.name} must hold one image reference, found {len(references)}: run 'make image' again")
    reference = by_digest(references[0])
    if repository and REFERENCE.fullmatch(reference)["repository"] != repository:
        raise ImageError(
            f"{path.name} names an image of {REFERENCE.fullmatch(reference)['repository']}, not of {repository}: "
            "run 'make image' for this project and region, or pass IMAGE=... to use that one"
        )
    return reference


def resolve(image: str | None, path: Path = IMAGE_FILE, repository: str | None = None) -> str:
    """An explicit IMAGE (which must name a digest) over the recorded one."""
    return by_digest(image) if image else read(path, repository)


def spec(image: str, metadata: dict, environment: dict[str, str]) -> dict:
    """The Flex Template spec, as `gcloud dataflow flex-template build` writes it (image, sdkInfo,
    metadata, defaultEnvironment), plus the workers' image: the same digest as the launcher's."""
    defaults = {key: value for key, value in environment.items() if value}
    return {
        "image": image,
        "sdkInfo": {"language": "PYTHON"},
        "metadata": metadata,
        "defaultEnvironment": {**defaults, "sdkContainerImage": image},
    }


def unpinned_base_images(dockerfile: Path = DOCKERFILE) -> list[str]:
    """The images deploy/Dockerfile starts FROM (its ARG defaults substituted) that are not pinned by digest."""
    text = dockerfile.read_text(encoding="utf-8")
    defaults = dict(re.findall(r"^ARG\s+(\w+)=(\S*)", text, flags=re.MULTILINE))
    stages, unpinned = set(), []
    for image, stage in re.findall(r"^FROM\s+(?:--\S+\s+)*(\S+)(?:\s+AS\s+(\S+))?", text, flags=re.MULTILINE | re.I):
        resolved = re.sub(r"\$\{(\w+)\}|\$(\w+)", lambda m: defaults.get(m[1] or m[2], m[0]), image)
        if resolved not in stages and not re.search(r"@sha256:[0-9a-f]{64}$", resolved):
            unpinned.append(resolved)
        if stage:
            stages.add(stage)
    return unpinned


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="deploy/flex_template.py", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    recorded = commands.add_parser("record", help="record REPOSITORY@DIGEST of a pushed tag")
    recorded.add_argument("--repository", required=True)
    recorded.add_argument("--tag", required=True)
    recorded.add_argument("--digest", required=True, help="sha256:... as the registry reports it")
    for name in ("image", "spec"):
        command = commands.add_parser(name, help="print the image reference" if name == "image" else "write the spec")
        command.add_argument("--image", default="", help="REPOSITORY@sha256:...; default: the recorded one")
        command.add_argument("--repository", default="", help="refuse a recorded image of another repository")
    template = commands.choices["spec"]
    template.add_argument("--out", type=Path, required=True)
    template.add_argument("--metadata", type=Path, default=METADATA)
    for option in ("service-account-email", "staging-location", "temp-location", "network", "subnetwork"):
        template.add_argument(f"--{option}", default="")
    commands.add_parser("base-images", help="check that deploy/Dockerfile's base images are pinned by digest")
    for command in commands.choices.values():
        command.add_argument("--file", type=Path, default=IMAGE_FILE, help="the recorded reference")
    return parser.parse_args(argv)


def main(argv: list[str]) -> None:
    args = parse_args(argv)
    try:
        if args.command == "record":
            print(record(args.repository, args.tag, args.digest, args.file))
        elif args.command == "image":
            print(resolve(args.image, args.file, args.repository))
        elif args.command == "spec":
            environment = {
                "serviceAccountEmail": args.service_account_email,
                "stagingLocation": args.staging_location,
                "tempLocation": args.temp_location,
                "network": args.network,
                "subnetwork": args.subnetwork,
            }
            image = resolve(args.image, args.file, args.repository)
            document = spec(image, json.loads(args.metadata.read_text(encoding="utf-8")), environment)
            args.out.parent.mkdir(parents=True, exist_ok=True)
            args.out.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
            print(f"wrote {args.out}, naming {image}", file=sys.stderr)
        elif unpinned := unpinned_base_images():
            raise ImageError(
                f"deploy/Dockerfile's base images are not pinned by digest ({', '.join(unpinned)}): set the "
                "*_DIGEST arguments at its top to the sha256:... their tags point to (its header shows how)"
            )
    except ImageError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(EXIT_CONFIG_ERROR)


if __name__ == "__main__":
    main(sys.argv[1:])
