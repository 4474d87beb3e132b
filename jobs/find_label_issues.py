"""Find label errors: `smartray find-label-issues --split NAME [--folds 5]`.

The entry point that RayJobs run, `python -m jobs.find_label_issues`;
the job itself is `smartray.predict.job_find_label_issues`.
"""

from smartray.predict.job_find_label_issues import main

if __name__ == "__main__":
    main()
