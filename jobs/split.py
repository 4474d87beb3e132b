"""Assign train/val/test: `smartray split --name NAME --ratios train=0.8,val=0.1,test=0.1`.

The entry point that RayJobs run, `python -m jobs.split`;
the job itself is `smartray.split.job_split`.
"""

from smartray.split.job_split import main

if __name__ == "__main__":
    main()
