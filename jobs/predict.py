"""Score assets with a model: `smartray predict --model ID|latest [--split NAME]`.

The entry point that RayJobs run, `python -m jobs.predict`;
the job itself is `smartray.predict.job_predict`.
"""

from smartray.predict.job_predict import main

if __name__ == "__main__":
    main()
