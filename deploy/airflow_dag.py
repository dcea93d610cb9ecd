"""Nightly scoring of the day's reviews on Dataflow, from Airflow, through the Flex Template.

Needs apache-airflow-providers-google. Build the image and the template spec first (README,
"Running on Dataflow", steps 1-3). The launch body below is what tests/test_dataflow.py renders for
one day and feeds to deploy/flex_main.py, so a parameter the template does not take fails there.
"""

from __future__ import annotations

import pendulum
from airflow import DAG
from airflow.providers.google.cloud.operators.dataflow import DataflowStartFlexTemplateOperator

PROJECT = "my-project"
REGION = "europe-west1"
BUCKET = "my-bucket"

with DAG(
    dag_id="reviewscore_nightly",
    schedule="0 3 * * *",
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    tags=["reviewscore"],
) as dag:
    DataflowStartFlexTemplateOperator(
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
