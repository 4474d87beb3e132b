"""Defaults of `smartray augment`, declared once for the library and the job's flags."""

COPIES = 1  # children per parent
SEED = 0  # fixes every random choice: the same seed gives the same bytes
PARENTS_PER_TASK = 32  # parents one Ray task augments
