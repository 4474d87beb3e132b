"""Entry points, one per job: `python -m jobs.<name>` runs what `smartray <name>` runs.

Not part of the wheel: they run from a checkout or the image's working directory (where
RayJobs and `ray job submit` start), and each only calls its job's `main` in the library.
"""
