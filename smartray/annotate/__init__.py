"""Annotating and reviewing: ontology, label formats, the label ledger, review."""
