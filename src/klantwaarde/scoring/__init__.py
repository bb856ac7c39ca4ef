"""Monthly scoring with the champion models: features at as_of, scores, reasons, the scores
table, and drift against the training data."""
