"""Watching every scoring run: statistics of what was scored, drift checks against the bundle's
training profile, the run's summary and its report page.

- `statistics.py`: additive histograms of a set of scored reviews (one function for training
  profiles and scoring runs alike);
- `training_profile.py`: the training profile, the bundle file the checks compare against;
- `drift.py`: the checks, each a named statistic with a threshold;
- `report.py`: the self-contained _report.html, rendered from the run's summary and statistics;
- `summarize.py`: the pipeline's summary step, which computes all of the above once every record
  is counted (`pipeline/job/sinks.py` writes what it computes).
"""
