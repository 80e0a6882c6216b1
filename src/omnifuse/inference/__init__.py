"""Prediction from a saved model folder: ``loading.load`` -> ``predictor.Predictor`` (user rows turned into
records by ``rows``), explanations (``explain``) and whole-table prediction (``predict_table``)."""
