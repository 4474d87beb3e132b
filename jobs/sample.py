"""Draw a named snapshot: `smartray sample --name NAME --strategy S --n N [--where EXPR]`.

The entry point that RayJobs run, `python -m jobs.sample`;
the job itself is `smartray.sample.job`.
"""

from smartray.sample.job import main

if __name__ == "__main__":
    main()
