"""The model boundary: what training and scoring share. The target names (``targets``), the
registry and its aliases (``registry``), the model MLflow logs and loads (``customer_model``)
and how it applies a fitted candidate (``fitted``), the metrics of validation and evaluation
(``metrics``), and drift against the training data (``drift``)."""
