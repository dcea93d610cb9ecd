"""Nightly scoring of the previous day's reviews on Dataflow through the Flex Template, from Airflow 2.10+ or 3.

Needs apache-airflow-providers-google with its apache-beam extra (its Dataflow operator imports the
Beam provider); deploy/airflow-requirements.txt (Airflow 3) and deploy/airflow2-requirements.txt
(Airflow 2) pin the versions `make check-dag` tests it with, each with `[operators]
default_deferrable` on and off. Build the image and the template spec first (docs/production.md).

Settings. Airflow Variables, read when the file is parsed (reviewscore_launch, shipped beside it):
reviewscore_project, reviewscore_region and reviewscore_bucket are required; reviewscore_service_account,
reviewscore_staging_location, reviewscore_temp_location, reviewscore_network and reviewscore_subnetwork
have defaults. One missing or left at the documentation's placeholder (my-project, my-bucket) refuses
the file: the DagBag's import error names the Variable to set, and no night runs with it.

Five tasks a day, none holding a worker slot while it waits:

1. `wait_for_reviews` waits for gs://BUCKET/reviews/DAY/_SUCCESS (INPUT_MARKER), which the upstream
   export writes last, once the day's files are all there; scoring a half-written folder would publish
   a partial day as the whole. reviewscore reads only *.txt and *.parquet, so the marker is never
   scored, and a day with the marker and no reviews is a successful run with nothing to score. It
   checks every 10 minutes for up to 12 hours, in the triggerer when deferrable, else rescheduling.
2. `score_reviews` launches the template for that day and returns once Dataflow has the job (never
   deferred: there is nothing to wait for). A launch the API refuses (400: a parameter the template's
   metadata rejects; 403; 404: no template spec) fails the day at once; other errors are retried.
3. `wait_for_job` follows that job until it is done: deferred to the triggerer when deferrable, else
   rescheduled every 5 minutes, for at most JOB_TIMEOUT. A job that failed or was cancelled fails the
   day at once with Dataflow's error messages and the job's console link, and is not relaunched: a
   launcher that refused its configuration (the entry point's one line and exit code 2) and a job that
   failed after Dataflow's own retries of its work would both fail again. Dataflow reports only that
   the launch failed; the entry point's line is in the job's launcher log (Cloud Logging), which the
   task's message points to. After fixing the cause, clear `score_reviews` to run the day again.
4. `check_run` reads the day's _SUMMARY.json and fails the day unless the job's verdict passed by this
   DAG's policy (reviewscore_policy: on_drift=fail, max_error_rate=0.01) and its records add up; a
   template launch submits and returns, so the verdict is the only place the policy is applied. A
   summary with 0 records read and a passing verdict is a day with nothing to score: it passes.
5. `cancel_unfinished_job` runs only when the wait failed (a timeout, or its own errors): it cancels the
   day's job if still running, so a stuck job stops billing and cannot publish into a day already failed.

Which day. The run that starts at 03:00 UTC on day D scores day D-1, whose folder is complete by then.
The schedule is an explicit CronDataIntervalTimetable, not the string "0 3 * * *": Airflow 3 turns a
cron string into a CronTriggerTimetable (`[scheduler] create_cron_data_intervals` is False by
default), whose run has no interval behind it, so `{{ ds }}` would be day D and the 03:00 run would
score a folder still being written. With the data-interval timetable the run covers [D-1 03:00,
D 03:00) and starts when that interval ends, on Airflow 2 and 3 alike. The paths name the day as the
start of that interval (DAY, `{{ data_interval_start | ds }}`) rather than `{{ ds }}`: for a scheduled
run the two agree, but a run triggered by hand with a logical date L covers the last whole interval
before L while its `ds` is L's own day. A manual run without a logical date (Airflow 3) has no data
interval, and its tasks fail on the template instead of guessing a day.

Time and retries. Every task has an execution_timeout, and a run as a whole DAGRUN_TIMEOUT, shorter than
a day: with max_active_runs=1 (two jobs never race for Dataflow quota) a stuck day must end before the
next one is due. Tasks are retried twice, 10 minutes apart, for what a retry can fix (a Cloud Storage
or Dataflow API error); the sensor's timeout, a refused launch, a failed job and the gate's verdict
fail at once. catchup=False: each day is independent, and unpausing the DAG should not launch one job
per missed day; re-run one on purpose with a backfill (`airflow backfill create` on Airflow 3,
`airflow dags backfill` on Airflow 2; the logical dates are the intervals' starts, 03:00 UTC). A
relaunched day replaces its output (overwrite=true); the operator appends a unique suffix to the job name.

Beside this file in dags/ (`make dag-files`): reviewscore_summary (schemas/summary.py, the job's own
summary models, which the gate parses the day's summary with; imported by that task only, not when the
file is parsed), reviewscore_policy (deploy/dag_policy.py, the launch policy and the gate's rules) and
reviewscore_launch (deploy/dag_launch.py, the settings and the launch request); the standard library
and pydantic (one of Airflow's own dependencies) only, so Airflow's environment needs no reviewscore.
Airflow puts the dags/ folder on the import path.
tests/test_airflow_dag.py checks this file in the pinned Airflow environments
(deploy/check_airflow_dag.sh), and feeds the launch request to the template's entry point.
"""

from __future__ import annotations

import logging
from datetime import timedelta

import pendulum
from airflow.providers.google.cloud.hooks.dataflow import DataflowHook, DataflowJobStatus
from airflow.providers.google.cloud.hooks.gcs import GCSHook
from airflow.providers.google.cloud.operators.dataflow import DataflowStartFlexTemplateOperator
from airflow.providers.google.cloud.sensors.dataflow import DataflowJobStatusSensor
from airflow.providers.google.cloud.sensors.gcs import GCSObjectExistenceSensor
from google.api_core.exceptions import NotFound
from googleapiclient.errors import HttpError
from reviewscore_launch import SettingsError, day_locations, launch_request, read_settings
from reviewscore_policy import MAX_ERROR_RATE, gate_problems, launch_parameters, shadow_line

try:  # Airflow 3: the task SDK
    from airflow.sdk import DAG, CronDataIntervalTimetable, Variable
    from airflow.sdk.exceptions import AirflowException, AirflowFailException
except ImportError:  # Airflow 2
    from airflow import DAG
    from airflow.exceptions import AirflowException, AirflowFailException
    from airflow.models import Variable
    from airflow.timetables.interval import CronDataIntervalTimetable
try:  # Airflow 3, and Airflow 2 with apache-airflow-providers-standard
    from airflow.providers.standard.operators.python import PythonOperator
except ImportError:  # Airflow 2 without it
    from airflow.operators.python import PythonOperator

DAG_ID = "reviewscore_nightly"
GCP_CONN_ID = "google_cloud_default"
DAY = "{{ data_interval_start | ds }}"
"""The day a run scores: the first day of its data interval (the day before the run starts)."""
DAY_NODASH = "{{ data_interval_start | ds_nodash }}"
INPUT_MARKER = "_SUCCESS"
"""Written last by the upstream export into reviews/DAY/, once that day's files are complete."""
LAUNCH_TASK = "score_reviews"
JOB_ID = "{{ ti.xcom_pull(task_ids='" + LAUNCH_TASK + "', key='job_id') }}"
"""The job the launch created (the operator pushes its id as the XCom `job_id`)."""
INPUT_TIMEOUT = timedelta(hours=12)
JOB_TIMEOUT = timedelta(hours=6)
DAGRUN_TIMEOUT = timedelta(hours=20)
"""Longer than the tasks' own timeouts added up, shorter than a day."""
REFUSED_LAUNCH = {400, 403, 404}
"""HTTP statuses of a launch request that a retry would get again (a bad parameter, a permission, no spec)."""

log = logging.getLogger(__name__)

try:
    SETTINGS = read_settings(lambda key: Variable.get(key, None))
except SettingsError as e:
    # Raised at parse time: the DagBag shows this one line as the file's import error.
    raise SettingsError(f"{DAG_ID}: {e}") from None


def console_link(job_id: str) -> str:
    return f"https://console.cloud.google.com/dataflow/jobs/{SETTINGS.region}/{job_id}?project={SETTINGS.project}"


class LaunchFlexTemplate(DataflowStartFlexTemplateOperator):
    """The provider's Flex Template launch, failing the day at once when the API refuses the request."""

    def execute(self, context):
        try:
            return super().execute(context)
        except HttpError as e:
            if e.resp.status not in REFUSED_LAUNCH:
                raise
            reason = e.reason if isinstance(e.reason, str) else str(e)
            raise AirflowFailException(f"Dataflow refused the launch ({e.resp.status}): {reason}") from None


class DataflowJobDone(DataflowJobStatusSensor):
    """The provider's job-status sensor, deferrable or not, for JOB_STATE_DONE; a job that ended otherwise
    fails the day at once (no retry) with Dataflow's error messages for it."""

    def __init__(self, **kwargs):
        super().__init__(expected_statuses={DataflowJobStatus.JOB_STATE_DONE}, **kwargs)

    def poke(self, context) -> bool:
        job = self.hook.get_job(job_id=self.job_id, project_id=self.project_id, location=self.location)
        state = job["currentState"]
        if state in self.expected_statuses:
            return True
        if state in DataflowJobStatus.TERMINAL_STATES:
            self.fail_with_reasons(job)
        self.log.info("Dataflow job %s is %s: %s", self.job_id, state, console_link(self.job_id))
        return False

    def execute_complete(self, context, event):
        if event["status"] == "success":
            return super().execute_complete(context, event)
        # The trigger reports a job that ended otherwise and its own errors alike: ask the job.
        job = self.hook.get_job(job_id=self.job_id, project_id=self.project_id, location=self.location)
        if job["currentState"] in DataflowJobStatus.TERMINAL_STATES:
            self.fail_with_reasons(job)
        raise AirflowException(f"following Dataflow job {self.job_id} failed: {event['message']}")

    def fail_with_reasons(self, job: dict) -> None:
        messages = self.hook.fetch_job_messages_by_id(
            job_id=self.job_id, project_id=self.project_id, location=self.location
        )
        errors = [m["messageText"].strip() for m in messages if m.get("messageImportance") == "JOB_MESSAGE_ERROR"]
        reasons = "; ".join(errors[-3:]) or "Dataflow gave no error message"
        raise AirflowFailException(
            f"Dataflow job {job.get('name', self.job_id)} ended {job['currentState']}: {reasons}. The launcher's and "
            f"workers' logs (a configuration error is the launcher's one 'error:' line): {console_link(self.job_id)}"
        )


def check_run(day: str) -> None:
    """Fail the day unless its job passed by its own verdict, with the policy this DAG gave it."""
    # Imported here, not when the file is parsed: the summary's pydantic models cost the scheduler's
    # every parse, and only this task reads a summary.
    from reviewscore_summary import SummaryError, summary_from_json

    bucket = SETTINGS.bucket
    summary_object = f"scored/{day}/_SUMMARY.json"
    where = f"gs://{bucket}/{summary_object}"
    try:
        text = GCSHook(gcp_conn_id=GCP_CONN_ID).download(bucket_name=bucket, object_name=summary_object)
    except NotFound:
        raise AirflowFailException(f"{where} does not exist: the job finished without writing its summary") from None
    try:
        summary = summary_from_json(text)
    except SummaryError as e:
        raise AirflowFailException(f"{where} is not a run summary: {e}") from None
    problems = gate_problems(summary, SETTINGS.max_disagreement)
    verdict = summary.verdict
    if problems or verdict is None:
        report = f"; see {summary.report}" if summary.report else ""
        raise AirflowFailException(f"{day} did not pass: {'; '.join(problems)} ({where}{report})")
    scored, failed = summary.records_scored, summary.records_failed
    if summary.records_read == 0:
        log.info(f"{day} had no reviews: nothing to score ({where})")
        return
    log.info(
        f"{day} passed: {scored:,} reviews scored, {failed:,} failed ({verdict.error_rate:.2%}, "
        f"at most {float(MAX_ERROR_RATE):.2%} allowed); drift: {summary.drift.status}{shadow_line(summary)}"
    )


def cancel_unfinished_job(job_id: str | None) -> None:
    """Cancel the day's job if it is still running (the wait for it failed or timed out)."""
    if not job_id or job_id == "None":
        log.info("No Dataflow job was launched for this day: nothing to cancel")
        return
    log.info(f"Cancelling Dataflow job {job_id} unless it has ended: {console_link(job_id)}")
    DataflowHook(gcp_conn_id=GCP_CONN_ID).cancel_job(
        job_id=job_id, project_id=SETTINGS.project, location=SETTINGS.region
    )


with DAG(
    dag_id=DAG_ID,
    schedule=CronDataIntervalTimetable("0 3 * * *", timezone="UTC"),
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    dagrun_timeout=DAGRUN_TIMEOUT,
    default_args={"retries": 2, "retry_delay": timedelta(minutes=10), "execution_timeout": timedelta(minutes=15)},
    tags=["reviewscore"],
) as dag:
    parameters = launch_parameters(*day_locations(SETTINGS, DAY), SETTINGS.shadow_model, SETTINGS.max_disagreement)
    wait = GCSObjectExistenceSensor(
        task_id="wait_for_reviews",
        bucket=SETTINGS.bucket,
        object=f"reviews/{DAY}/{INPUT_MARKER}",
        google_cloud_conn_id=GCP_CONN_ID,
        mode="reschedule",
        poke_interval=timedelta(minutes=10).total_seconds(),
        timeout=INPUT_TIMEOUT.total_seconds(),
        execution_timeout=INPUT_TIMEOUT,
    )
    score = LaunchFlexTemplate(
        task_id=LAUNCH_TASK,
        project_id=SETTINGS.project,
        location=SETTINGS.region,
        gcp_conn_id=GCP_CONN_ID,
        body=launch_request(SETTINGS, f"reviewscore-{DAY_NODASH}", parameters),
        deferrable=False,
        wait_until_finished=False,
    )
    job = DataflowJobDone(
        task_id="wait_for_job",
        job_id=JOB_ID,
        project_id=SETTINGS.project,
        location=SETTINGS.region,
        gcp_conn_id=GCP_CONN_ID,
        mode="reschedule",
        poke_interval=timedelta(minutes=5).total_seconds(),
        poll_interval=60,
        timeout=JOB_TIMEOUT.total_seconds(),
        execution_timeout=JOB_TIMEOUT,
    )
    check = PythonOperator(task_id="check_run", python_callable=check_run, op_kwargs={"day": DAY})
    cancel = PythonOperator(
        task_id="cancel_unfinished_job",
        python_callable=cancel_unfinished_job,
        op_kwargs={"job_id": JOB_ID},
        trigger_rule="one_failed",
    )
    wait >> score >> job >> check
    job >> cancel
