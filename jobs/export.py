"""Export images and labels: `smartray export --format coco|yolo|labelstudio|cvat --out DIR`.

The entry point that RayJobs run, `python -m jobs.export`;
the job itself is `smartray.annotate.job_export`.
"""

from smartray.annotate.job_export import main

if __name__ == "__main__":
    main()
