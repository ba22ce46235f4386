"""ilyd: a Salesforce enrichment connector daemon."""

__version__ = "0.1.0"
