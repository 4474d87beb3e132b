"""Train a classifier: `smartray train --split NAME [--model small-cnn] [--epochs 5]`.

The entry point that RayJobs run, `python -m jobs.train`;
the job itself is `smartray.train.job`.
"""

from smartray.train.job import main

if __name__ == "__main__":
    main()
