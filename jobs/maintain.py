"""Lake upkeep: `smartray maintain [--lake URI] [--tables a,b] [--dry-run]`.

The entry point that RayJobs run, `python -m jobs.maintain`;
the job itself is `smartray.upkeep.job_maintain`.
"""

from smartray.upkeep.job_maintain import main

if __name__ == "__main__":
    main()
