"""`smartray <job> [flags]`: runs the job's `main` (registered in `smartray.jobrun.JOBS`).

The same job runs three ways with the same arguments: this CLI, `python -m jobs.<job>`
(for `ray job submit`), and a KubeRay RayJob whose entrypoint is that module.
"""

from __future__ import annotations

import importlib
import sys

from smartray.jobrun import JOBS

USAGE = "usage: smartray <job> [flags]   (smartray <job> --help for a job's flags)"

# Commands that are not Ray jobs themselves (so they have no module in jobs/).
COMMANDS = {"submit": "smartray.cluster.submit"}


def job_names() -> list[str]:
    """The jobs there are, as CLI names (kebab-case)."""
    return sorted(JOBS)


def main(argv: list[str] | None = None) -> None:
    """Dispatches to the job module and exits with its code."""
    args = list(sys.argv[1:] if argv is None else argv)
    names = job_names()
    if not args or args[0] in ("-h", "--help"):
        print(USAGE + "\n\njobs: " + ", ".join(names) + "\ncommands: " + ", ".join(COMMANDS))
        raise SystemExit(0 if args else 2)
    name, rest = args[0], args[1:]
    if name in COMMANDS:
        module = importlib.import_module(COMMANDS[name])
    elif name in names:
        module = importlib.import_module(JOBS[name])
    else:
        print(f"smartray: unknown job {name!r}; jobs: {', '.join(names)}", file=sys.stderr)
        raise SystemExit(2)
    code = 0
    try:
        module.main(rest)  # `run_job` prints, maps errors to exit codes and frees memory
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    raise SystemExit(code)


if __name__ == "__main__":
    main()
