"""Where the nightly DAG runs the job: its settings, read from Airflow Variables, and one day's launch request.

Standard library only, so two places read one definition: the DAG, which imports it as
`reviewscore_launch` from Airflow's dags/ folder (`make dag-files` ships it there beside the DAG),
and the dev suite, which feeds a day's request to the template's entry point (tests/test_airflow_dag.py).

The settings are read when Airflow parses the DAG. A value still at the documentation's placeholder,
or missing, refuses the whole file with one line naming the Variable to set: the DagBag shows it as
the DAG's import error, before any night launches a job into someone else's project.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

VARIABLE_PREFIX = "reviewscore_"
VARIABLES = {
    "project": "the Google Cloud project ID the job runs in",
    "region": "the Dataflow region, e.g. europe-west1",
    "bucket": "the bucket's name (without gs://) holding reviews/, scored/, models/ and templates/",
    "service_account": "the launcher's and workers' service account (default reviewscore@PROJECT.iam.gserviceaccount"
    ".com)",
    "staging_location": "where the launcher stages the job's files (default gs://BUCKET/staging)",
    "temp_location": "the job's temporary files (default gs://BUCKET/tmp)",
    "network": "the VPC network of the launcher VM and the workers (default: Dataflow's, the network named default)",
    "subnetwork": "their subnetwork, regions/REGION/subnetworks/NAME or its URL (default: Dataflow's choice)",
    "shadow_model": "a challenger bundle's gs:// folder, scored beside the model every night (default: none)",
    "max_disagreement": "the largest share of reviews the challenger may label differently before the day fails "
    "(default: no limit; needs shadow_model)",
}
"""Each setting and what it is; its Airflow Variable is VARIABLE_PREFIX + the name."""
REQUIRED = ("project", "region", "bucket")
PLACEHOLDERS = frozenset({"my-project", "my-bucket", "my-reviewscore-bucket", "PROJECT", "BUCKET", "REGION"})
"""The documentation's example values: a DAG left with one would run in someone else's project."""
FORMATS = {
    "project": (r"[a-z][a-z0-9-]{4,28}[a-z0-9]", "a project ID (6 to 30 lowercase letters, digits, hyphens)"),
    "region": (r"[a-z]+-[a-z]+[0-9]+", "a region such as europe-west1"),
    "bucket": (r"[a-z0-9][a-z0-9_.-]{1,220}[a-z0-9]", "a bucket name, without gs://"),
    "service_account": (r"[^@\s]+@[^@\s]+\.[a-z]+", "a service account's email"),
    "staging_location": (r"gs://[^/\s]+(/\S*)?", "a gs:// location"),
    "temp_location": (r"gs://[^/\s]+(/\S*)?", "a gs:// location"),
    "network": (r"[a-z]([a-z0-9-]{0,61}[a-z0-9])?", "a VPC network name"),
    "subnetwork": (r"(https://www\.googleapis\.com/compute/v1/projects/[a-z0-9-]+/)?regions/[a-z0-9-]+/subnetworks/\S+",
                   "regions/REGION/subnetworks/NAME or its full URL"),
    "shadow_model": (r"gs://[^/\s]+/\S*", "a bundle's gs:// folder"),
    "max_disagreement": (r"0(\.[0-9]+)?|1(\.0+)?|\.[0-9]+", "a share from 0 to 1, such as 0.02"),
}  # fmt: skip
MACHINE_TYPE = "n2-standard-4"
"""One model per SDK process, one process per vCPU: enough memory per vCPU (docs/production.md, Workers)."""
MAX_WORKERS = 10


class SettingsError(ValueError):
    """A setting left unset, at a placeholder, or malformed: one line naming its Variable."""


@dataclass(frozen=True)
class Settings:
    project: str
    region: str
    bucket: str
    service_account: str
    staging_location: str
    temp_location: str
    network: str | None
    subnetwork: str | None
    shadow_model: str | None = None
    max_disagreement: str | None = None

    @property
    def template(self) -> str:
        return f"gs://{self.bucket}/templates/reviewscore.json"

    @property
    def model(self) -> str:
        return f"gs://{self.bucket}/models/imdb-bilstm/"


def read_settings(variable: Callable[[str], str | None]) -> Settings:
    """The settings from `variable(name)` (Airflow's Variable.get, None when unset), each checked.

    Raises SettingsError for the first that is missing, still a placeholder, or not of its form.
    """
    values = {}
    for name in VARIABLES:
        key = VARIABLE_PREFIX + name
        value = (variable(key) or "").strip() or None
        if value is None and name in REQUIRED:
            raise SettingsError(f"set the Airflow Variable {key} to {VARIABLES[name]}: it is not set")
        if value in PLACEHOLDERS:
            raise SettingsError(
                f"set the Airflow Variable {key} to {VARIABLES[name]}: '{value}' is the documentation's placeholder"
            )
        pattern, form = FORMATS[name]
        if value is not None and not re.fullmatch(pattern, value):
            raise SettingsError(f"the Airflow Variable {key} is '{value}', not {form}")
        values[name] = value
    if values["max_disagreement"] is not None and values["shadow_model"] is None:
        key = VARIABLE_PREFIX + "max_disagreement"
        raise SettingsError(f"the Airflow Variable {key} needs {VARIABLE_PREFIX}shadow_model: set both, or neither")
    project, bucket = values["project"], values["bucket"]
    return Settings(
        project=project,
        region=values["region"],
        bucket=bucket,
        service_account=values["service_account"] or f"reviewscore@{project}.iam.gserviceaccount.com",
        staging_location=values["staging_location"] or f"gs://{bucket}/staging",
        temp_location=values["temp_location"] or f"gs://{bucket}/tmp",
        network=values["network"],
        subnetwork=values["subnetwork"],
        shadow_model=values["shadow_model"],
        max_disagreement=values["max_disagreement"],
    )


def day_locations(settings: Settings, day: str) -> tuple[str, str, str]:
    """A day's input folder, output folder and model: the template's `input`, `output` and `model`."""
    return f"gs://{settings.bucket}/reviews/{day}/", f"gs://{settings.bucket}/scored/{day}/", settings.model


def launch_request(settings: Settings, job_name: str, parameters: dict[str, str]) -> dict:
    """The body of projects.locations.flexTemplates.launch for one day's parameters.

    The environment is Dataflow's FlexTemplateRuntimeEnvironment: the staging location is where the
    launcher writes the job's files (without it Dataflow picks a bucket of its own, where the service
    account has no grant), and the network and subnetwork are sent only when set (Dataflow's default
    is the network named default, which a project may not have). No worker image: the template
    spec decides which image the workers run, so the DAG cannot name a stale one.
    """
    environment: dict = {
        "serviceAccountEmail": settings.service_account,
        "stagingLocation": settings.staging_location,
        "tempLocation": settings.temp_location,
        "machineType": MACHINE_TYPE,
        "maxWorkers": MAX_WORKERS,
    }
    if settings.network:
        environment["network"] = settings.network
    if settings.subnetwork:
        environment["subnetwork"] = settings.subnetwork
    return {
        "launchParameter": {
            "jobName": job_name,
            "containerSpecGcsPath": settings.template,
            "parameters": parameters,
            "environment": environment,
        }
    }
