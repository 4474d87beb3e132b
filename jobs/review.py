"""Review labels: `smartray review --approve|--reject|--fix|--resubmit --reviewer NAME`.

The entry point that RayJobs run, `python -m jobs.review`;
the job itself is `smartray.annotate.job_review`.
"""

from smartray.annotate.job_review import main

if __name__ == "__main__":
    main()
