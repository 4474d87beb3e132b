"""Print each lake table's version, rows and bytes: `smartray tables [--lake URI] [--json]`.

The entry point that RayJobs run, `python -m jobs.tables`;
the job itself is `smartray.query.job_tables`.
"""

from smartray.query.job_tables import main

if __name__ == "__main__":
    main()
