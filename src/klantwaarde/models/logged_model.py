"""The code MLflow logs with every model (models-from-code, see ``customer_model``) and runs to
load one; not imported by klantwaarde itself."""

import mlflow.models

from klantwaarde.models.customer_model import CustomerModel

mlflow.models.set_model(CustomerModel())
