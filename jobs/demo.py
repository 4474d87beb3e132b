"""The demo: build a small real corpus, ingest it twice, curate and split it, show the lake.

The entry point that RayJobs run, `python -m jobs.demo`;
the job itself is `smartray.demo.job`.
"""

from smartray.demo.job import main

if __name__ == "__main__":
    main()
