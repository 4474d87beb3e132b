"""Erase assets for good: `smartray erase ID... [--ids-file PATH] [--lake URI]`.

The entry point that RayJobs run, `python -m jobs.erase`;
the job itself is `smartray.upkeep.job_erase`.
"""

from smartray.upkeep.job_erase import main

if __name__ == "__main__":
    main()
