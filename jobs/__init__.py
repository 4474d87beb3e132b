"""One thin module per job: `python -m jobs.<name>` = `smartray <name>`."""
