"""Evaluate a model: `smartray evaluate --model ID|latest --split NAME --on val`.

The entry point that RayJobs run, `python -m jobs.evaluate`;
the job itself is `smartray.predict.job_evaluate`.
"""

from smartray.predict.job_evaluate import main

if __name__ == "__main__":
    main()
