"""klantwaarde: customer-value management from a company's own order history."""

__version__ = "0.1.0"
