"""Run SQL over the lake's tables: `smartray query "SQL" [--lake URI]`.

The entry point that RayJobs run, `python -m jobs.query`;
the job itself is `smartray.query.job_query`.
"""

from smartray.query.job_query import main

if __name__ == "__main__":
    main()
