"""What pipeline/job/beam_internals.py reads of Beam, checked against the Beam this project pins.

A Beam upgrade that moves one of them fails here, naming it, instead of costing a detail in a run
(a job id not shown, a dead worker not noticed) that nobody would see.
"""

from __future__ import annotations

import importlib.util
import inspect
import re
from pathlib import Path

import apache_beam
import pytest
from apache_beam.ml.inference import base as inference_base
from apache_beam.runners.dataflow.dataflow_runner import DataflowPipelineResult
from apache_beam.runners.portability import local_job_service
from apache_beam.runners.portability.portable_runner import PipelineResult as PortableResult

from pipeline.job import beam_internals

ROOT = Path(__file__).resolve().parents[1]


def test_the_installed_beam_is_the_pinned_one():
    pinned = re.search(r"^apache-beam==(\S+)$", (ROOT / "requirements.lock").read_text(), re.MULTILINE)
    assert pinned and apache_beam.__version__ == pinned.group(1)


def test_dataflow_results_say_whether_a_job_was_submitted_and_its_id():
    assert isinstance(inspect.getattr_static(DataflowPipelineResult, "has_job"), property)
    assert callable(DataflowPipelineResult.job_id)


def test_a_portable_runners_result_keeps_its_job_id():
    assert "self._job_id = job_id" in inspect.getsource(PortableResult.__init__)

    class Result:  # what PortableRunner returns carries no public accessor: the adapter reads the field
        _job_id = "job-7"

    assert beam_internals.submitted_job_id(Result()) == "job-7"
    assert beam_internals.described_only(Result()) is False


def test_direct_runner_words_a_dead_worker_as_the_adapter_expects():
    assert beam_internals.WORKER_EXITED in inspect.getsource(local_job_service.SubprocessSdkWorker.run)
    assert importlib.util.find_spec(beam_internals.WORKER_COMMAND) is not None


def test_run_inference_records_model_loads_under_the_metric_read():
    assert f"'{beam_internals.LOAD_LATENCY_METRIC}'" in inspect.getsource(inference_base)


def test_beams_credential_cache_is_where_anonymous_storage_clears_it():
    pytest.importorskip("apache_beam.io.gcp.gcsio", reason="the gcp extra is not installed")
    from apache_beam.internal.gcp import auth

    credentials = auth._Credentials
    for name in ("_credentials_lock", "_credentials", "_credentials_init"):
        assert hasattr(credentials, name), name
    saved = credentials._credentials, credentials._credentials_init
    try:
        beam_internals.use_anonymous_storage()
        assert credentials._credentials is None and credentials._credentials_init is True
    finally:
        credentials._credentials, credentials._credentials_init = saved
