"""Import labels: `smartray import-labels FILE --format F --annotator NAME [--image-root DIR]`.

The entry point that RayJobs run, `python -m jobs.import_labels`;
the job itself is `smartray.annotate.job_import_labels`.
"""

from smartray.annotate.job_import_labels import main

if __name__ == "__main__":
    main()
