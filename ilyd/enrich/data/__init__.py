"""Data files bundled with ilyd's enrichment (read with importlib.resources; see README.md)."""
