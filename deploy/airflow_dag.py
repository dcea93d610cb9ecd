"""Nightly scoring of the day's reviews on Dataflow, from Airflow, through the Flex Template.

Needs apache-airflow-providers-google. Build the image and the template spec first (README,
"Running on Dataflow", steps 1-3). The launch body below is what tests/test_dataflow.py renders for
one day and feeds to deploy/flex_main.py, so a parameter the template does not take fails there.

The Flex Template submits and returns, so nothing on Dataflow's side applies `--on-drift fail`; the
`drift_gate` task does it for the schedule: once the job has finished it reads the day's
_SUMMARY.json and fails the DAG run when the job detected drift, so downstream tasks never take its
labels unseen. Every record is scored and written either way; the report is beside the summary.
"""

from __future__ import annotations

import json

import pendulum
from airflow import DAG
from airflow.exceptions import AirflowFailException
from airflow.operators.python import PythonOperator
from airflow.providers.google.cloud.operators.dataflow import DataflowStartFlexTemplateOperator

PROJECT = "my-project"
REGION = "europe-west1"
BUCKET = "my-bucket"


def drift_gate(ds: str) -> None:
    """Fail when the day's run detected drift (reviewscore's --on-drift fail, for scheduled runs)."""
    from google.cloud import storage

    output = f"scored/{ds}"
    summary = json.loads(
        storage.Client(project=PROJECT).bucket(BUCKET).blob(f"{output}/_SUMMARY.json").download_as_bytes()
    )
    drift = summary["drift"]
    if drift["detected"]:
        drifted = ", ".join(check["name"] for check in drift["checks"] if check["drifted"])
        raise AirflowFailException(f"drift detected ({drifted}); see gs://{BUCKET}/{output}/report.html")
    print(f"drift: {drift['status']}; {summary['records_scored']} reviews scored, {summary['records_failed']} failed")


with DAG(
    dag_id="reviewscore_nightly",
    schedule="0 3 * * *",
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    tags=["reviewscore"],
) as dag:
    score = DataflowStartFlexTemplateOperator(
        task_id="score_reviews",
        project_id=PROJECT,
        location=REGION,
        wait_until_finished=True,
        body={
            "launchParameter": {
                "jobName": "reviewscore-{{ ds_nodash }}",
                "containerSpecGcsPath": f"gs://{BUCKET}/templates/reviewscore.json",
                "parameters": {
                    "input": f"gs://{BUCKET}/reviews/{{{{ ds }}}}/",
                    "output": f"gs://{BUCKET}/scored/{{{{ ds }}}}/",
                    "model": f"gs://{BUCKET}/models/imdb-bilstm/",
                    "overwrite": "true",
                },
                "environment": {
                    "tempLocation": f"gs://{BUCKET}/tmp",
                    "sdkContainerImage": f"{REGION}-docker.pkg.dev/{PROJECT}/reviewscore/scorer:latest",
                    "machineType": "n2-standard-4",
                    "maxWorkers": 10,
                },
            }
        },
    )
    score >> PythonOperator(task_id="drift_gate", python_callable=drift_gate, op_kwargs={"ds": "{{ ds }}"})
