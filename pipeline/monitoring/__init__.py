"""Watching every scoring run: statistics of what was scored, drift checks against the bundle's
training profile, and the run's report page.

- `statistics.py`: additive histograms of a set of scored reviews (one function for training
  profiles and scoring runs alike);
- `training_profile.py`: the training profile, the bundle file the checks compare against;
- `drift.py`: the checks, each a named statistic with a threshold;
- `report.py`: the self-contained report.html written beside the scored files.
"""
