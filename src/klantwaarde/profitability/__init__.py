"""Profitability: net margin per customer after cost-to-serve (``margins``), the customer pyramid,
the whale curve and account qualification (``segments``), their charts (``charts``) and the
``klantwaarde profitability`` report (``report``). Everything is a window over the history."""
