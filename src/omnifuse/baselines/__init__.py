"""Classical baselines fitted beside every model: scikit-learn features and models, the floor to beat.

Per model input, features computed from the raw table rows (``features/``: pixels + HOG, MFCC statistics,
TF-IDF n-grams, the raw tabular columns, frozen pretrained embeddings), a linear model with its
regularisation chosen on the validation rows and, for tabular inputs, gradient boosting (``models``);
every input's features concatenated for an early-fusion linear model; scored with the task's own metrics
(``run``). ``report`` turns the results into the report line, the "Baselines" section, a CSV and a plot.
"""
