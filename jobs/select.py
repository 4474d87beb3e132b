"""Pick an active-learning batch: `smartray select --experiment NAME --budget N`.

The entry point that RayJobs run, `python -m jobs.select`;
the job itself is `smartray.selection.job_select`.
"""

from smartray.selection.job_select import main

if __name__ == "__main__":
    main()
