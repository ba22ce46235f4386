"""Enrichment: domain extraction, providers, the Ily field catalogue."""
