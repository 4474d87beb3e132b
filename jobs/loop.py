"""Active-learning rounds: `smartray loop --experiment NAME --split NAME`.

The entry point that RayJobs run, `python -m jobs.loop`;
the job itself is `smartray.loop.job`.
"""

from smartray.loop.job import main

if __name__ == "__main__":
    main()
