"""Hyper-parameter tuning on Optuna (``omnifuse tune``, ``omnifuse.tune``).

space.py parses and checks the config's ``search:`` section; objective.py runs one trial; study.py opens
the study (storage, sampler, pruner) and runs its worker processes; report.py writes trials.csv, the plots
and report.md; run.py ties them together. Optuna is imported only when a study runs (the ``tune`` extra).
"""
