"""List groups that straddle splits: `smartray check-leaks --split NAME` (or `--split-file`).

The entry point that RayJobs run, `python -m jobs.check_leaks`;
the job itself is `smartray.split.job_check_leaks`.
"""

from smartray.split.job_check_leaks import main

if __name__ == "__main__":
    main()
