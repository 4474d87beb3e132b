"""Register or list label ontologies: `smartray ontology add FILE.yaml` / `smartray ontology list`.

The entry point that RayJobs run, `python -m jobs.ontology`;
the job itself is `smartray.annotate.job_ontology`.
"""

from smartray.annotate.job_ontology import main

if __name__ == "__main__":
    main()
