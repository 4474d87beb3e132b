"""Score an experiment's pool: `smartray score --experiment NAME [--mc-dropout N]`.

The entry point that RayJobs run, `python -m jobs.score`;
the job itself is `smartray.selection.job_score`.
"""

from smartray.selection.job_score import main

if __name__ == "__main__":
    main()
