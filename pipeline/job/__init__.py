"""The Beam job: reviews read, scored by the model library (`pipeline.model`) in RunInference, written.

- `options.py`: every job option, defined once (CLI, Flex Template parser, metadata.json);
- `scoring.py`: a job from one parse of its options, launched locally or on Dataflow;
- `graph.py`: `build_pipeline(p, source, sink, model)`, the graph itself;
- `sources.py`, `sinks.py`: review files and Parquet in; labelled Parquet, quarantine and summary out;
- `model_handler.py`: the bundle behind Beam's ModelHandler, loaded once per worker;
- `tallies.py`, `summarize.py`, `report.py`, `verdict.py`, `lineage.py`: what a run counted, its
  summary, report page, pass/fail verdict and lineage;
- `locations.py`: inputs and outputs on any Beam filesystem, checked before a job starts;
- `local_run.py`, `metrics.py`: a local run's signals and threads, the job's Beam counters.
"""
