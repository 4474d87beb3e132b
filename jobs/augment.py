"""Augment a snapshot: `smartray augment --snapshot NAME --ops flip,rotate:15 --copies K`.

The entry point that RayJobs run, `python -m jobs.augment`;
the job itself is `smartray.augment.job`.
"""

from smartray.augment.job import main

if __name__ == "__main__":
    main()
