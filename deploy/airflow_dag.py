"""Nightly scoring of the previous day's reviews on Dataflow, from Airflow 3, through the Flex Template.

Needs apache-airflow-providers-google with its apache-beam extra (its Dataflow operator imports the
Beam provider); deploy/airflow-requirements.txt pins the versions `deploy/check_airflow_dag.sh`
tests it with. Build the image and the template spec first (docs/production.md, "Step
by step"). Three tasks a day:

1. `wait_for_reviews` waits for gs://BUCKET/reviews/DAY/_SUCCESS (INPUT_MARKER), which the upstream
   export writes last, once the day's files are all there; a folder is never known to be complete
   otherwise, and scoring a half-written one would publish a partial day as the whole. reviewscore
   reads only *.txt and *.parquet files, so the marker is never scored. The sensor reschedules
   (frees its worker slot between checks) every 10 minutes for up to 12 hours, then fails the day.
2. `score_reviews` launches the template for that day and waits for the job. No worker image is
   named: the image knows its own reference (REVIEWSCORE_IMAGE, baked in at build) and the entry
   point gives it to the workers, so the job runs the image the template spec points at. The DAG
   passes `on_drift=fail` and `max_error_rate=0.01`, so the job judges itself by the policy the
   gate enforces and records it in its verdict.
3. `check_run` reads the day's _SUMMARY.json and fails the DAG run unless the job's verdict passed
   (a template launch submits and returns, so nobody else sees `--on-drift fail` or
   `--max-error-rate`). It also fails when records were lost (read != scored + failed), when the
   summary has no verdict (a job older than this DAG) or one judged by another policy. Every record
   is scored and written either way; the message names the problems and the report.

Which day. The run that starts at 03:00 UTC on day D scores day D-1, whose folder is complete by
then. The schedule is an explicit CronDataIntervalTimetable, not the string "0 3 * * *": Airflow 3
turns a cron string into a CronTriggerTimetable (`[scheduler] create_cron_data_intervals` is False
by default), whose run has no interval behind it (logical date, data interval start and end are all
the run's own instant), so `{{ ds }}` would be day D and the 03:00 run would score a folder still
being written. With the data-interval timetable the run covers [D-1 03:00, D 03:00) and starts when
that interval ends, whatever the configuration. The paths name the day as the start of that interval
(DAY, `{{ data_interval_start | ds }}`) rather than `{{ ds }}`: for a scheduled run the two agree,
but a run triggered by hand with a logical date L covers the last whole interval before L while its
`ds` is L's own day, so `ds` would again point at a partial folder. A manual run without a logical
date has no data interval, and its tasks fail on the template instead of guessing a day.

catchup=False: each day is independent, and unpausing the DAG (or changing start_date) should not
launch one Dataflow job per missed day; a missed day is re-run on purpose, with
`airflow backfill create --dag-id reviewscore_nightly --from-date ... --to-date ...` (the logical
dates are the intervals' starts, 03:00 UTC). max_active_runs=1: a late day, its sensor still
waiting, holds the next one back instead of two jobs racing for Dataflow quota. Each task is retried
twice, 10 minutes apart (a failed launch, a failed job, a Cloud Storage error); a retried launch starts a new job (the
operator appends a unique suffix to the job name) that replaces the day's output (overwrite=true).
The sensor's timeout and the gate's verdict fail at once (they would fail again).

The gate reads the summary with reviewscore's own reader, `schemas/summary.py`, which needs nothing
but the standard library: it is shipped beside this file, as `reviewscore_summary.py` in the same
`dags/` folder (`make dag-files` puts both there), and Airflow puts that folder on the import path
of every DAG it parses and every task it runs. So the gate reads exactly the contract the job
writes, typed, with no reviewscore installed in Airflow's environment; a file that is not a run
summary fails the day with what is wrong with it.

The launch body is what tests/test_airflow_dag.py renders for one day: it checks every parameter
against deploy/metadata.json and feeds them to deploy/flex_main.py in a dry run, and, in the pinned
Airflow environment, parses this file, renders the tasks for a scheduled run and runs `check_run`
through a real GCSHook against a Cloud Storage emulator, with the reader on the import path as
`make dag-files` ships it (deploy/check_airflow_dag.sh).
"""

from __future__ import annotations

import logging
from datetime import timedelta

import pendulum
from airflow.providers.google.cloud.hooks.gcs import GCSHook
from airflow.providers.google.cloud.operators.dataflow import DataflowStartFlexTemplateOperator
from airflow.providers.google.cloud.sensors.gcs import GCSObjectExistenceSensor
from airflow.providers.standard.operators.python import PythonOperator
from airflow.sdk import DAG, CronDataIntervalTimetable
from airflow.sdk.exceptions import AirflowFailException
from google.api_core.exceptions import NotFound
from reviewscore_summary import SummaryError, summary_from_json

PROJECT = "my-project"
REGION = "europe-west1"
BUCKET = "my-bucket"
SERVICE_ACCOUNT = f"reviewscore@{PROJECT}.iam.gserviceaccount.com"
"""The launcher's and workers' service account (docs/production.md, "Step by step", step 2)."""
GCP_CONN_ID = "google_cloud_default"
DAY = "{{ data_interval_start | ds }}"
"""The day a run scores: the first day of its data interval (the day before the run starts)."""
DAY_NODASH = "{{ data_interval_start | ds_nodash }}"
INPUT_MARKER = "_SUCCESS"
"""Written last by the upstream export into reviews/DAY/, once that day's files are complete."""
ON_DRIFT = "fail"
MAX_ERROR_RATE = "0.01"
"""Template parameters are strings; the job records the policy in its verdict as a number."""

log = logging.getLogger(__name__)


def check_run(day: str) -> None:
    """Fail the day unless its job passed by its own verdict, with the policy this DAG gave it."""
    summary_object = f"scored/{day}/_SUMMARY.json"
    where = f"gs://{BUCKET}/{summary_object}"
    try:
        text = GCSHook(gcp_conn_id=GCP_CONN_ID).download(bucket_name=BUCKET, object_name=summary_object)
    except NotFound:
        raise AirflowFailException(f"{where} does not exist: the job finished without writing its summary") from None
    try:
        summary = summary_from_json(text)
    except SummaryError as e:
        raise AirflowFailException(f"{where} is not a run summary: {e}") from None
    read, scored, failed = summary.records_read, summary.records_scored, summary.records_failed
    verdict = summary.verdict
    if verdict is None:
        problems = ["the summary has no verdict (written by a job older than this DAG)"]
    else:
        problems = list(verdict.problems)
        if not verdict.passed and not problems:
            problems.append("the verdict did not pass")
        if (verdict.on_drift, verdict.max_error_rate) != (ON_DRIFT, float(MAX_ERROR_RATE)):
            problems.append(
                f"judged with on_drift={verdict.on_drift}, max_error_rate={verdict.max_error_rate}, "
                f"not this DAG's on_drift={ON_DRIFT}, max_error_rate={MAX_ERROR_RATE}"
            )
    if read != scored + failed and not any(problem.startswith("records read") for problem in problems):
        problems.append(f"records read ({read:,}) differ from scored + failed ({scored + failed:,})")
    if problems or verdict is None:
        report = f"; see {summary.report}" if summary.report else ""
        raise AirflowFailException(f"{day} did not pass: {'; '.join(problems)} ({where}{report})")
    log.info(
        f"{day} passed: {scored:,} reviews scored, {failed:,} failed ({verdict.error_rate:.2%}, "
        f"at most {float(MAX_ERROR_RATE):.2%} allowed); drift: {summary.drift.status}"
    )


with DAG(
    dag_id="reviewscore_nightly",
    schedule=CronDataIntervalTimetable("0 3 * * *", timezone="UTC"),
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    default_args={"retries": 2, "retry_delay": timedelta(minutes=10)},
    tags=["reviewscore"],
) as dag:
    wait = GCSObjectExistenceSensor(
        task_id="wait_for_reviews",
        bucket=BUCKET,
        object=f"reviews/{DAY}/{INPUT_MARKER}",
        google_cloud_conn_id=GCP_CONN_ID,
        mode="reschedule",
        poke_interval=timedelta(minutes=10),
        timeout=timedelta(hours=12),
    )
    score = DataflowStartFlexTemplateOperator(
        task_id="score_reviews",
        project_id=PROJECT,
        location=REGION,
        gcp_conn_id=GCP_CONN_ID,
        wait_until_finished=True,
        body={
            "launchParameter": {
                "jobName": f"reviewscore-{DAY_NODASH}",
                "containerSpecGcsPath": f"gs://{BUCKET}/templates/reviewscore.json",
                "parameters": {
                    "input": f"gs://{BUCKET}/reviews/{DAY}/",
                    "output": f"gs://{BUCKET}/scored/{DAY}/",
                    "model": f"gs://{BUCKET}/models/imdb-bilstm/",
                    "overwrite": "true",
                    "on_drift": ON_DRIFT,
                    "max_error_rate": MAX_ERROR_RATE,
                },
                "environment": {
                    "tempLocation": f"gs://{BUCKET}/tmp",
                    "serviceAccountEmail": SERVICE_ACCOUNT,
                    "machineType": "n2-standard-4",
                    "maxWorkers": 10,
                },
            }
        },
    )
    check = PythonOperator(task_id="check_run", python_callable=check_run, op_kwargs={"day": DAY})
    wait >> score >> check
