"""`smartray submit JOB [job flags] --address URL`: run a job on a Ray cluster.

The job goes through Ray's Jobs API (`JobSubmissionClient`) as
`python -m jobs.<job> [job flags]` with this directory as its working directory; its
logs stream here and this command exits with the job's own exit code. The cluster must
have smartray's dependencies (the image from ./Dockerfile, or the same venv on a local
head started with `cluster/local_head.py`).

Only the S3 endpoint and region travel with the job (`runtime_env.env_vars`, which the
dashboard shows to anyone who can see it); keys never do: the cluster's processes find
them in their own environment, profile or role (DESIGN.md).

Token authentication: the token comes from `--token-file`, or as for every Ray client
from `RAY_AUTH_TOKEN`, `RAY_AUTH_TOKEN_PATH` or `~/.ray/auth_token`.

Exit codes: the job's own (0, 1, 2 as DESIGN.md says) once it ran; 2 for a usage error
here (unknown job, bad flags, no address) or a missing or refused token, with nothing
submitted; 1 when the cluster cannot be reached or the job was stopped.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import shlex
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from smartray.errors import ConfigError
from smartray.jobrun import EXIT_FAILED, EXIT_OK, EXIT_USAGE

log = logging.getLogger(__name__)

PROG = "smartray submit"

# The only settings a job takes along: where S3 is, never who may use it.
SUBMITTED_ENV = ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_REGION", "AWS_DEFAULT_REGION")

# Never uploaded with the working directory: environments, caches, local lakes and data
# (Ray's limit for a working directory is 500 MiB; data belongs on S3 for a cluster).
WORKING_DIR_EXCLUDES = [
    ".git", ".venv", "venv", "__pycache__", "*.pyc", "*.egg-info", ".mypy_cache",
    ".ruff_cache", ".pytest_cache", "lake", "demo-data", "bench/out",
    "notebooks/.ipynb_checkpoints",
]  # fmt: skip

# Flags of this command; no job may define a flag of the same name (a test checks).
SUBMIT_FLAGS = ("--address", "--token-file", "--working-dir", "--submission-id", "--no-wait")

TERMINAL = {"SUCCEEDED", "FAILED", "STOPPED"}


@dataclass(frozen=True)
class Submission:
    """What `smartray submit` sends: the job, its flags and where it runs."""

    job: str
    job_args: tuple[str, ...]
    address: str
    working_dir: str | None
    token_file: str | None = None
    submission_id: str | None = None
    wait: bool = True
    env_vars: dict[str, str] = field(default_factory=dict)

    @property
    def module(self) -> str:
        """The job's module, as `python -m` takes it."""
        return "jobs." + self.job.replace("-", "_")

    @property
    def entrypoint(self) -> str:
        """The command the cluster runs: the same as the CLI's, through the job module."""
        return shlex.join(["python", "-m", self.module, *self.job_args])

    def runtime_env(self) -> dict[str, Any]:
        """The job's runtime_env: working directory and non-secret S3 settings only."""
        env: dict[str, Any] = {}
        if self.working_dir is not None:
            env["working_dir"] = self.working_dir
            env["excludes"] = list(WORKING_DIR_EXCLUDES)
        if self.env_vars:
            env["env_vars"] = dict(self.env_vars)
        return env


class SubmitUsageError(ConfigError):
    """A usage error found before anything was submitted (exit 2)."""


def submitted_env(environ: dict[str, str] | None = None) -> dict[str, str]:
    """The S3 endpoint and region from this process's environment; never credentials."""
    source = os.environ if environ is None else environ
    return {k: source[k] for k in SUBMITTED_ENV if source.get(k)}


def _split_args(argv: Sequence[str]) -> tuple[list[str], list[str]]:
    """Separates this command's flags (anywhere on the line) from the job and its flags."""
    own, rest, i = [], [], 0
    takes_value = {f for f in SUBMIT_FLAGS if f != "--no-wait"}
    while i < len(argv):
        arg = argv[i]
        name = arg.split("=", 1)[0]
        if name in takes_value:
            if "=" in arg:
                own.append(arg)
            elif i + 1 < len(argv):
                own.extend(argv[i : i + 2])
                i += 1
            else:
                raise SubmitUsageError(f"{arg} needs a value")
        elif arg == "--no-wait":
            own.append(arg)
        else:
            rest.append(arg)
        i += 1
    return own, rest


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=PROG,
        usage=f"{PROG} JOB [job flags] --address URL [--token-file F] [--working-dir DIR]"
        " [--submission-id ID] [--no-wait]",
        description="Run a smartray job on a Ray cluster through Ray's Jobs API.",
    )
    p.add_argument(
        "--address",
        default=os.environ.get("RAY_ADDRESS"),
        help="the cluster's dashboard, http://HOST:8265 (default: $RAY_ADDRESS)",
    )
    p.add_argument("--token-file", help="file holding the cluster's auth token")
    p.add_argument("--working-dir", default=".",
                   help="uploaded as the job's working directory (default: .)")  # fmt: skip
    p.add_argument("--submission-id", help="the job's id (default: one Ray makes)")
    p.add_argument("--no-wait", action="store_true", help="submit and return at once")
    return p


def parse_submission(argv: Sequence[str]) -> Submission:
    """Parses `JOB [job flags]` and this command's flags.

    Raises:
        SubmitUsageError: no job, an unknown job, no address, or job flags the job's own
            parser refuses.
    """
    from smartray.cli import job_names

    if not argv or argv[0] in ("-h", "--help"):
        _parser().print_help()
        raise SystemExit(EXIT_OK if argv else EXIT_USAGE)
    own, rest = _split_args(argv)
    opts = _parser().parse_args(own)
    if not rest:
        raise SubmitUsageError("no job given; jobs: " + ", ".join(job_names()))
    job, job_args = rest[0], tuple(rest[1:])
    if job not in job_names():
        raise SubmitUsageError(f"unknown job {job!r}; jobs: {', '.join(job_names())}")
    if not opts.address:
        raise SubmitUsageError("no cluster address: give --address http://HOST:8265")
    address = opts.address if "://" in opts.address else f"http://{opts.address}"
    if opts.token_file is not None:
        if not Path(opts.token_file).is_file():
            raise SubmitUsageError(f"--token-file {opts.token_file!r}: no such file")
        use_token_file(opts.token_file)
    working_dir = opts.working_dir or None
    if working_dir is not None and not Path(working_dir).is_dir():
        raise SubmitUsageError(f"--working-dir {working_dir!r}: no such directory")
    submission = Submission(
        job=job,
        job_args=job_args,
        address=address,
        working_dir=working_dir,
        token_file=opts.token_file,
        submission_id=opts.submission_id,
        wait=not opts.no_wait,
        env_vars=submitted_env(),
    )
    check_job_args(submission)
    return submission


def check_job_args(submission: Submission) -> None:
    """Runs the job's own flag parser here, so a usage error costs no cluster round trip.

    A `--config FILE` that exists only on the cluster (a mounted ConfigMap, say) cannot
    be read here; the job's flags are then checked on the cluster instead.
    """
    import io
    from contextlib import redirect_stdout

    from smartray.jobrun import config_path, job_settings, parse

    config = config_path(list(submission.job_args))
    if config is not None and not Path(config).is_file():
        log.info("--config %s is not here; the job checks its flags on the cluster", config)
        return
    try:
        with redirect_stdout(io.StringIO()):  # `--help` prints the job's help here
            parse(
                job_settings(submission.job),
                list(submission.job_args),
                f"smartray {submission.job}",
            )
    except SystemExit as e:
        if e.code not in (0, None):
            raise SubmitUsageError(f"the flags of {submission.job!r} are not valid") from None


def use_token_file(path: str) -> None:
    """Makes Ray's client send the token in `path`.

    Ray reads its auth settings once per process, when its core loads: this must run
    before anything imports a job module (which imports Ray).
    """
    os.environ["RAY_AUTH_MODE"] = "token"
    os.environ["RAY_AUTH_TOKEN_PATH"] = str(Path(path).resolve())
    os.environ.pop("RAY_AUTH_TOKEN", None)  # it would win over the file


def _client(submission: Submission) -> Any:
    """A JobSubmissionClient for the address (token auth as the environment says)."""
    from ray.job_submission import JobSubmissionClient

    return JobSubmissionClient(submission.address)


async def _stream_logs(client: Any, job_id: str) -> None:
    async for chunk in client.tail_job_logs(job_id):
        sys.stdout.write(chunk)
        sys.stdout.flush()


def _wait_terminal(client: Any, job_id: str, timeout_s: float = 60.0) -> Any:
    """The job's info once it has a terminal status (the log stream can end first)."""
    deadline = time.monotonic() + timeout_s
    info = client.get_job_info(job_id)
    while str(info.status) not in TERMINAL and time.monotonic() < deadline:
        time.sleep(0.5)
        info = client.get_job_info(job_id)
    return info


def exit_code(status: str, driver_exit_code: int | None) -> int:
    """This command's exit code for a finished job: the job's own where Ray reports it."""
    if status == "SUCCEEDED":
        return EXIT_OK
    if status == "FAILED" and driver_exit_code not in (None, 0):
        return int(driver_exit_code)
    return EXIT_FAILED


def submit(submission: Submission) -> int:
    """Submits the job, streams its logs (unless `wait` is off) and returns the exit code.

    Raises:
        SubmitUsageError: the cluster refused the token, or none was given.
        ConnectionError: the cluster's dashboard cannot be reached.
    """
    from ray.exceptions import AuthenticationError

    try:
        client = _client(submission)
        job_id = client.submit_job(
            entrypoint=submission.entrypoint,
            submission_id=submission.submission_id,
            runtime_env=submission.runtime_env(),
            metadata={"smartray_job": submission.job},
        )
    except AuthenticationError as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else "authentication failed"
        raise SubmitUsageError(
            f"{submission.address} refused the request: {first} "
            "(give the cluster's token with --token-file, RAY_AUTH_TOKEN or RAY_AUTH_TOKEN_PATH)"
        ) from None
    print(f"{PROG}: job {job_id} submitted to {submission.address}: {submission.entrypoint}",
          file=sys.stderr, flush=True)  # fmt: skip
    if not submission.wait:
        return EXIT_OK
    try:
        asyncio.run(_stream_logs(client, job_id))
    except KeyboardInterrupt:
        stop = f"ray job stop {job_id} --address {submission.address}"
        print(f"\n{PROG}: stopped following; the job runs on. Stop it with `{stop}`",
              file=sys.stderr)  # fmt: skip
        return 130
    info = _wait_terminal(client, job_id)
    status = str(info.status)
    code = exit_code(status, getattr(info, "driver_exit_code", None))
    print(f"{PROG}: job {job_id} {status.lower()} (exit {code})", file=sys.stderr, flush=True)
    return code


def main(argv: list[str] | None = None) -> None:
    """`smartray submit`."""
    from smartray.logging import setup_logging

    setup_logging()
    try:
        code = submit(parse_submission(list(sys.argv[1:] if argv is None else argv)))
    except SubmitUsageError as e:
        print(f"{PROG}: error: {e}", file=sys.stderr)
        raise SystemExit(EXIT_USAGE) from None
    except (ConnectionError, OSError) as e:  # requests' errors are OSErrors too
        print(f"{PROG}: error: cannot reach the cluster: {e}", file=sys.stderr)
        raise SystemExit(EXIT_FAILED) from None
    raise SystemExit(code)
