"""Ensembles: several trained models saved as one model folder that predicts like any other.

``best`` trains the members of ``--preset best`` and selects them (``selection``: Caruana et al. 2004);
``layout`` reads and writes the folder (ensemble.json, members/<i>/, the manifest); ``combine`` averages the
members' outputs; ``predictor`` loads the folder; ``report`` writes its metrics, report and model card.
"""
