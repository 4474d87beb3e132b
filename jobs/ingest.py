"""Ingest images and videos: `smartray ingest SOURCE... [--lake URI] [video flags]`.

The entry point that RayJobs run, `python -m jobs.ingest`;
the job itself is `smartray.ingest.job`.
"""

from smartray.ingest.job import main

if __name__ == "__main__":
    main()
