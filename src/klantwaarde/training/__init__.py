"""Training and comparing the churn, margin and upgrade models, tracked and registered in MLflow
(``klantwaarde train``, ``klantwaarde promote``)."""
