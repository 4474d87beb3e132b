"""Write an experiment's report: `smartray report --experiment NAME --out report.html`.

The entry point that RayJobs run, `python -m jobs.report`;
the job itself is `smartray.report.job`.
"""

from smartray.report.job import main

if __name__ == "__main__":
    main()
