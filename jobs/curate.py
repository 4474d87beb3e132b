"""Group near-duplicates: `smartray curate [--lake URI] [--threshold BITS] [--full]`.

The entry point that RayJobs run, `python -m jobs.curate`;
the job itself is `smartray.curate.job`.
"""

from smartray.curate.job import main

if __name__ == "__main__":
    main()
