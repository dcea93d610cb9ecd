"""deploy/setup_gcp.sh against the one list of roles, and the image reference a template names.

The script's dry run is parsed: every role binding it prints is one row of deploy/iam_roles.txt and
every row is printed, for each identity. With --apply it runs against a stand-in `gcloud` on PATH
(a script that records its arguments and answers `describe` as told), so what exists is not created
again and what it runs is what the dry run printed. No Google Cloud project is reached: whether
Google accepts these roles as enough is checked on a real project only (docs/production.md).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "deploy" / "setup_gcp.sh"
PROJECT, REGION, BUCKET = "acme-reviews", "europe-west1", "acme-reviewscore"
WORKER = f"reviewscore@{PROJECT}.iam.gserviceaccount.com"
AIRFLOW = f"reviewscore-airflow@{PROJECT}.iam.gserviceaccount.com"
BUILD = "123456789-compute@developer.gserviceaccount.com"
DIGEST = "sha256:" + "0123456789abcdef" * 4
REPOSITORY = f"{REGION}-docker.pkg.dev/{PROJECT}/reviewscore/scorer"
ARGS = ["--project", PROJECT, "--region", REGION, "--bucket", BUCKET]

FAKE_GCLOUD = r"""#!/usr/bin/env bash
# Stands in for gcloud: records each call; `describe` fails for what FAKE_MISSING names.
echo "$*" >> "$FAKE_LOG"
case "$*" in
  *" describe "*) for missing in $FAKE_MISSING; do [[ "$*" == *"$missing"* ]] && exit 1; done; echo found ;;
  "builds get-default-service-account"*) echo "projects/acme-reviews/serviceAccounts/$FAKE_BUILD_SA" ;;
esac
exit 0
"""


def iam_roles():
    from deploy.iam_roles import grants

    return grants()


def run_script(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["bash", str(SCRIPT), *args], capture_output=True, text=True, env={**os.environ, **(env or {})}, timeout=60
    )


def bindings(lines: list[str], members: dict[str, str]) -> set[tuple[str, str, str]]:
    """(identity, scope, role) of every add-iam-policy-binding line, its member mapped to an identity."""
    scopes = {
        f"projects add-iam-policy-binding {PROJECT} ": "project",
        f"storage buckets add-iam-policy-binding gs://{BUCKET} ": "bucket",
        "artifacts repositories add-iam-policy-binding reviewscore ": "repository",
        f"iam service-accounts add-iam-policy-binding {WORKER} ": "worker-account",
    }
    found = set()
    for line in lines:
        if "add-iam-policy-binding" not in line:
            continue
        scope = next(scope for prefix, scope in scopes.items() if prefix in line)
        member = re.search(r"--member=(\S+)", line)[1]
        found.add((members[member], scope, re.search(r"--role=(\S+)", line)[1]))
    return found


def expected() -> set[tuple[str, str, str]]:
    return {(row.identity, row.scope, row.role) for row in iam_roles()}


def test_the_dry_run_grants_exactly_the_listed_roles_to_each_identity():
    done = run_script(*ARGS)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    members = {
        f"serviceAccount:{AIRFLOW}": "airflow",
        f"serviceAccount:{WORKER}": "worker",
        "serviceAccount:$BUILD_SA": "build",
    }
    grants = [line for line in lines if "add-iam-policy-binding" in line]
    assert bindings(lines, members) == expected() and len(grants) == len(expected())
    # The identities the issue named, each with what it needs.
    assert {
        ("airflow", "bucket", "roles/storage.objectViewer"),
        ("airflow", "project", "roles/dataflow.developer"),
        ("airflow", "worker-account", "roles/iam.serviceAccountUser"),
        ("worker", "project", "roles/dataflow.worker"),
        ("worker", "bucket", "roles/storage.objectAdmin"),
        ("worker", "repository", "roles/artifactregistry.reader"),
        ("build", "repository", "roles/artifactregistry.writer"),
    } <= expected()
    commands = [line for line in lines if not line.startswith("#")]
    assert all(line.startswith(("gcloud ", "BUILD_SA=$(gcloud ")) for line in commands), commands
    creates = " ".join(commands)
    for resource in (
        f"storage buckets create gs://{BUCKET}",
        "artifacts repositories create reviewscore",
        "service-accounts create reviewscore ",
        "service-accounts create reviewscore-airflow ",
    ):
        assert resource in creates, resource
    # Each creation is behind a describe of the same thing, so a second run creates nothing.
    assert all(" describe " in line.split("||")[0] for line in commands if " create " in line)
    assert "compute networks describe default" in creates, "the default network is checked when none is named"


def test_an_existing_airflow_account_network_and_build_account_are_used_as_given():
    composer = f"composer-env@{PROJECT}.iam.gserviceaccount.com"
    subnetwork = f"regions/{REGION}/subnetworks/dataflow"
    done = run_script(
        *ARGS, "--network", "prod-vpc", "--subnetwork", subnetwork, "--airflow-sa", composer, "--build-sa", BUILD
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    members = {
        f"serviceAccount:{composer}": "airflow",
        f"serviceAccount:{WORKER}": "worker",
        f"serviceAccount:{BUILD}": "build",
    }
    assert bindings(lines, members) == expected()
    text = done.stdout
    assert "reviewscore-airflow" not in text and "get-default-service-account" not in text
    assert "compute networks describe prod-vpc" in text and "subnets describe dataflow --region=europe-west1" in text
    assert f"NETWORK=prod-vpc SUBNETWORK={subnetwork}" in text, "the next step names the network for the template"


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--project", "my-project", "--region", REGION, "--bucket", BUCKET], "--project 'my-project'"),
        (["--project", PROJECT, "--region", REGION, "--bucket", "my-bucket"], "--bucket 'my-bucket'"),
        (["--project", PROJECT, "--region", REGION], "--bucket is required"),
        ([*ARGS, "--subnetwork", "regions/us-east1/subnetworks/x"], "--subnetwork"),
        ([*ARGS, "--project=Bad Project"], "--project"),
        ([*ARGS, "--applied"], "unknown argument '--applied'"),
    ],
)
def test_a_wrong_or_placeholder_argument_is_one_line_and_exit_2_before_anything_runs(args, fragment, tmp_path):
    log = tmp_path / "gcloud.log"
    done = run_script(*args, "--apply", env=fake_gcloud(tmp_path, log))
    assert done.returncode == 2 and done.stdout == ""
    assert len(done.stderr.strip().splitlines()) == 1 and fragment in done.stderr, done.stderr
    assert not log.exists(), "nothing may run before the arguments are checked"


def fake_gcloud(tmp_path: Path, log: Path, missing: str = "") -> dict[str, str]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    (bin_dir / "gcloud").write_text(FAKE_GCLOUD)
    (bin_dir / "gcloud").chmod(0o755)
    return {
        "PATH": f"{bin_dir}:{os.environ['PATH']}",
        "FAKE_LOG": str(log),
        "FAKE_MISSING": missing,
        "FAKE_BUILD_SA": BUILD,
    }


def test_apply_runs_what_the_dry_run_printed_and_creates_only_what_is_missing(tmp_path):
    dry = run_script(*ARGS, env=fake_gcloud(tmp_path, tmp_path / "dry.log"))
    assert dry.returncode == 0 and not (tmp_path / "dry.log").exists(), "a dry run calls nothing"

    log = tmp_path / "apply.log"
    # The bucket and the worker account exist already; the repository and Airflow's account do not.
    done = run_script(*ARGS, "--apply", env=fake_gcloud(tmp_path, log, missing="repositories reviewscore-airflow@"))
    assert done.returncode == 0, done.stderr
    calls = log.read_text().splitlines()
    created = [call for call in calls if " create " in call]
    assert len(created) == 2 and "artifacts repositories create reviewscore " in created[0]
    assert "iam service-accounts create reviewscore-airflow " in created[1]
    members = {
        f"serviceAccount:{AIRFLOW}": "airflow",
        f"serviceAccount:{WORKER}": "worker",
        f"serviceAccount:{BUILD}": "build",
    }
    assert bindings(calls, members) == expected(), "the build account is the one Cloud Build names"
    printed = [line.removeprefix("+ ") for line in done.stdout.splitlines() if line.startswith("+ ")]
    assert printed == [line for line in dry.stdout.splitlines() if not line.startswith("#")]


def test_the_script_is_shellcheck_clean():
    if not shutil.which("shellcheck"):
        pytest.skip("shellcheck is not installed (apt install shellcheck)")
    done = subprocess.run(["shellcheck", str(SCRIPT)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout


def test_the_documented_role_table_is_the_list():
    from deploy.iam_roles import DOCS_PAGE, REGENERATE, generated_part, render

    assert generated_part(DOCS_PAGE.read_text()) == render(iam_roles()), f"stale: run {REGENERATE}"
    assert "deploy/setup_gcp.sh" in DOCS_PAGE.read_text()


def test_the_roles_file_refuses_an_unknown_identity_or_scope(tmp_path):
    from deploy.iam_roles import grants

    broken = tmp_path / "roles.txt"
    broken.write_text("operator | project | roles/owner | everything\n")
    with pytest.raises(ValueError, match=r"roles.txt:1: expected"):
        grants(broken)


def test_the_makefile_defaults_name_the_account_and_bucket_locations_the_script_sets_up():
    done = subprocess.run(
        ["make", "-n", "template", f"PROJECT={PROJECT}", f"BUCKET={BUCKET}", f"IMAGE={REPOSITORY}@{DIGEST}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert f"--service-account-email {WORKER}" in done.stdout, "the worker account setup_gcp.sh creates"
    assert f"--staging-location gs://{BUCKET}/staging --temp-location gs://{BUCKET}/tmp" in done.stdout
    assert f'--image "{REPOSITORY}@{DIGEST}"' in done.stdout


# ---------------------------------------------------------------------------------------------------
# The image reference: recorded by digest at build, read by the template.


def flex_template():
    import importlib.util

    spec = importlib.util.spec_from_file_location("deploy_flex_template", ROOT / "deploy" / "flex_template.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_recorded_image_is_named_by_digest_and_checked_on_reading(tmp_path):
    tool = flex_template()
    path = tmp_path / "image.ref"
    with pytest.raises(tool.ImageError, match=r"image\.ref is missing: build the image first"):
        tool.read(path)
    with pytest.raises(tool.ImageError, match="has no digest"):
        tool.record(REPOSITORY, "abc123", "", path)
    assert not path.exists(), "nothing half-written"
    assert tool.record(REPOSITORY, "abc123", DIGEST + "\n", path) == f"{REPOSITORY}@{DIGEST}"
    assert tool.read(path, REPOSITORY) == f"{REPOSITORY}@{DIGEST}"
    assert "Pushed as " + REPOSITORY + ":abc123" in path.read_text()
    with pytest.raises(tool.ImageError, match=r"names an image of .*, not of europe-west4"):
        tool.read(path, REPOSITORY.replace("europe-west1", "europe-west4"))
    with pytest.raises(tool.ImageError, match="not named by digest"):
        tool.resolve(f"{REPOSITORY}:abc123", path)
    assert tool.resolve(f"{REPOSITORY}@{DIGEST}", tmp_path / "absent") == f"{REPOSITORY}@{DIGEST}"


def make(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["make", "--no-print-directory", *args, f"PROJECT={PROJECT}", f"BUCKET={BUCKET}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_make_image_name_and_template_read_the_recorded_digest_or_refuse(tmp_path):
    missing = make("image-name", f"IMAGE_FILE={tmp_path / 'none.ref'}")
    assert missing.returncode == 2 and "make image" in missing.stderr and missing.stdout == ""
    assert "error: none.ref is missing" in missing.stderr
    tagged = make("image-name", f"IMAGE={REPOSITORY}:latest")
    assert tagged.returncode == 2 and "not named by digest" in tagged.stderr

    recorded = tmp_path / "image.ref"
    flex_template().record(REPOSITORY, "abc123", DIGEST, recorded)
    named = make("-s", "image-name", f"IMAGE_FILE={recorded}")
    assert named.returncode == 0 and named.stdout.strip() == f"{REPOSITORY}@{DIGEST}", named.stderr
    # make image records the tag it pushed, and the tag is fixed for the whole call.
    plan = make("-n", "image").stdout
    tag = re.search(rf"_IMAGE={re.escape(REPOSITORY)}:(\S+) \.", plan)[1]
    assert f"images describe {REPOSITORY}:{tag} " in plan and f"record --repository {REPOSITORY} --tag {tag}" in plan
    assert f"--gcs-source-staging-dir gs://{BUCKET}/cloudbuild/source" in plan, "the source the build account may read"


@pytest.mark.slow
def test_the_template_spec_names_the_digest_for_the_launcher_and_the_workers(tmp_path):
    tool = flex_template()
    out = tmp_path / "template.json"
    environment = [
        "--service-account-email",
        WORKER,
        "--staging-location",
        f"gs://{BUCKET}/staging",
        "--temp-location",
        f"gs://{BUCKET}/tmp",
        "--network",
        "prod-vpc",
        "--subnetwork",
        "",
    ]
    with pytest.raises(SystemExit) as refused:
        tool.main(["spec", "--file", str(tmp_path / "none.ref"), "--out", str(out), *environment])
    assert refused.value.code == 2 and not out.exists()

    tool.main(["spec", "--image", f"{REPOSITORY}@{DIGEST}", "--out", str(out), *environment])
    spec = json.loads(out.read_text())
    assert spec["image"] == spec["defaultEnvironment"]["sdkContainerImage"] == f"{REPOSITORY}@{DIGEST}"
    assert spec["defaultEnvironment"] == {
        "serviceAccountEmail": WORKER,
        "stagingLocation": f"gs://{BUCKET}/staging",
        "tempLocation": f"gs://{BUCKET}/tmp",
        "network": "prod-vpc",
        "sdkContainerImage": f"{REPOSITORY}@{DIGEST}",
    }
    assert spec["metadata"] == json.loads((ROOT / "deploy" / "metadata.json").read_text())

    if not shutil.which("gcloud"):
        return
    # The same spec as gcloud's own builder writes, but for the workers' image, which it has no flag for.
    built = subprocess.run(
        [
            "gcloud",
            "dataflow",
            "flex-template",
            "build",
            f"gs://{BUCKET}/t.json",
            "--print-only",
            "--image",
            f"{REPOSITORY}@{DIGEST}",
            "--sdk-language",
            "PYTHON",
            "--project",
            PROJECT,
            "--metadata-file",
            str(ROOT / "deploy" / "metadata.json"),
            *environment[:-2],  # gcloud takes no empty --subnetwork
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "CLOUDSDK_CONFIG": str(tmp_path / "gcloud")},
    )
    assert built.returncode == 0, built.stderr
    gcloud_spec = json.loads(built.stdout.split("\n", 1)[1])  # printed as a YAML block: '|-' then the JSON
    del spec["defaultEnvironment"]["sdkContainerImage"]
    assert spec == gcloud_spec


def test_base_images_pinned_by_digest_pass_the_check_and_empty_digests_are_refused(tmp_path):
    tool = flex_template()
    unpinned = tool.unpinned_base_images()
    assert [image.rsplit("@", 1)[0] for image in unpinned] == [
        "gcr.io/dataflow-templates-base/python311-template-launcher-base:latest",
        "apache/beam_python3.11_sdk:2.77.0",
    ], "both FROMs name NAME:TAG@${*_DIGEST}"
    pinned = tmp_path / "Dockerfile"
    text = (ROOT / "deploy" / "Dockerfile").read_text()
    pinned.write_text(
        text.replace("ARG LAUNCHER_DIGEST=\n", f"ARG LAUNCHER_DIGEST={DIGEST}\n").replace(
            "ARG BEAM_DIGEST=\n", f"ARG BEAM_DIGEST={DIGEST}\n"
        )
    )
    assert tool.unpinned_base_images(pinned) == []


def test_a_dataflow_launch_names_its_image_whatever_the_environment_holds(monkeypatch):
    from pipeline.job.scoring import LaunchError, with_worker_image

    monkeypatch.setenv("REVIEWSCORE_IMAGE", f"{REPOSITORY}:old")
    with pytest.raises(LaunchError, match="--sdk_container_image=REPOSITORY@sha256"):
        with_worker_image(["--runner=DataflowRunner", "--project=p", "--region=europe-west1"])
    named = ["--runner=DataflowRunner", f"--sdk_container_image={REPOSITORY}@{DIGEST}"]
    assert with_worker_image(named) == named
