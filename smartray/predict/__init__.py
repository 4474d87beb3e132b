"""Predictions and evaluation: a recorded model points back at the data.

`smartray predict` fills `predictions` (what evaluation, label issues and selection
read); the Ray pipeline is imported on first use.
"""
