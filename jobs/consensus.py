"""Merge several annotators' labels: `smartray consensus [--min-agreement 0.7] [--iou 0.5]`.

The entry point that RayJobs run, `python -m jobs.consensus`;
the job itself is `smartray.annotate.job_consensus`.
"""

from smartray.annotate.job_consensus import main

if __name__ == "__main__":
    main()
