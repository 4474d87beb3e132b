"""Job settings, exit codes and the CLI dispatcher, without starting Ray."""

import json
import subprocess
import sys

import pytest

from smartray import cli
from smartray.ingest.job import IngestJob
from smartray.jobrun import parse, run_job


def test_flags_are_kebab_case_and_blur_can_be_turned_off():
    cfg = parse(IngestJob, ["a", "b", "--lake", "/x", "--no-blur", "--max-pixels", "5"], "t")
    assert (cfg.sources, cfg.lake, cfg.blur, cfg.max_pixels) == (["a", "b"], "/x", False, 5)


def test_precedence_flags_then_env_then_config_file(tmp_path, monkeypatch):
    conf = tmp_path / "job.yaml"
    conf.write_text("lake: /from-file\nmax_pixels: 7\nrows_per_block: 3\n")
    monkeypatch.setenv("SMARTRAY_MAX_PIXELS", "8")
    cfg = parse(IngestJob, ["src", "--config", str(conf)], "t")
    assert (cfg.lake, cfg.max_pixels, cfg.rows_per_block) == ("/from-file", 8, 3)
    cfg = parse(IngestJob, ["src", "--config", str(conf), "--max-pixels", "9"], "t")
    assert cfg.max_pixels == 9


@pytest.mark.parametrize(
    "argv",
    [
        [],  # no source
        ["src", "--max-pixels", "0"],  # invalid value
        ["src", "--bogus", "1"],  # unknown flag
        ["src", "--config", "/no/such.yaml"],
    ],
)
def test_usage_errors_exit_2(argv, capsys):
    with pytest.raises(SystemExit) as e:
        parse(IngestJob, argv, "smartray ingest")
    assert e.value.code == 2
    assert "smartray ingest" in capsys.readouterr().err


def test_broken_config_file_exits_2(tmp_path, capsys):
    conf = tmp_path / "job.yaml"
    conf.write_text("lake: [unclosed\n")
    with pytest.raises(SystemExit) as e:
        parse(IngestJob, ["src", "--config", str(conf)], "smartray ingest")
    assert e.value.code == 2


def test_unknown_detector_exits_2_before_anything_is_written(tmp_path, capsys):
    from jobs import ingest

    (tmp_path / "src").mkdir()
    with pytest.raises(SystemExit) as e:
        ingest.main(
            [str(tmp_path / "src"), "--lake", str(tmp_path / "lake"), "--detectors", "facee"]
        )
    assert e.value.code == 2
    assert "facee" in capsys.readouterr().err
    assert not (tmp_path / "lake").exists()


def test_missing_source_exits_2_and_writes_nothing(tmp_path, capsys):
    from jobs import ingest

    with pytest.raises(SystemExit) as e:
        ingest.main([str(tmp_path / "nope"), "--lake", str(tmp_path / "lake")])
    assert e.value.code == 2
    assert "does not exist" in capsys.readouterr().err
    assert not (tmp_path / "lake").exists()


def test_unexpected_failure_exits_1(capsys):
    def boom(cfg):
        raise RuntimeError("disk on fire")

    with pytest.raises(SystemExit) as e:
        run_job(IngestJob, ["src"], "smartray ingest", boom)
    assert e.value.code == 1


def test_cli_lists_jobs_and_refuses_unknown_ones(capsys):
    assert {"ingest", "tables", "query", "demo"} <= set(cli.job_names())
    with pytest.raises(SystemExit) as e:
        cli.main(["nope"])
    assert e.value.code == 2
    assert "unknown job 'nope'" in capsys.readouterr().err


def test_tables_json_and_query_on_an_empty_lake(tmp_path):
    # A subprocess through the installed console script, as a user runs it.
    exe = [sys.executable, "-m", "smartray.cli"]
    out = subprocess.run(
        [*exe, "tables", "--lake", str(tmp_path), "--json"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert json.loads(out.stdout) == {}
    bad = subprocess.run(
        [*exe, "query", "SELECT * FROM nothing", "--lake", str(tmp_path)],
        capture_output=True,
        text=True,
    )
    assert bad.returncode == 2
    assert "query failed" in bad.stderr


def test_ingest_flags_default_to_the_library_configs():
    from smartray.ingest import IngestConfig
    from smartray.ingest.job import config

    assert config(parse(IngestJob, ["src"], "t")) == IngestConfig(sources=("src",))


def test_curate_flags_default_to_the_library_config():
    from smartray.curate import CurateConfig
    from smartray.curate.job import CurateJob, config

    assert config(parse(CurateJob, [], "t")) == CurateConfig()


@pytest.mark.parametrize(
    "flag", ["--scene-threshold=2", "--min-gap-s=-1", "--max-frames-per-video=0", "--max-bytes=0"]
)
def test_a_flag_keeps_its_library_fields_bounds(flag, capsys):
    with pytest.raises(SystemExit) as e:
        parse(IngestJob, ["src", flag], "smartray ingest")
    assert e.value.code == 2


def test_field_from_refuses_a_constraint_it_cannot_copy():
    from pydantic import BaseModel, Field

    from smartray.jobrun import field_from

    class Lib(BaseModel):
        name: str = Field("x", pattern="^x$")

    with pytest.raises(TypeError, match="cannot copy"):
        field_from(Lib, "name", description="d")


def test_run_job_prints_and_returns_the_text_or_the_lines_as_they_come(capsys):
    assert run_job(IngestJob, ["src"], "t", lambda cfg: "one line") == "one line"
    assert capsys.readouterr().out == "one line\n"

    def lines(cfg):
        yield "first"
        print("between")
        yield "second"

    assert run_job(IngestJob, ["src"], "t", lines) == "first\nsecond"
    assert capsys.readouterr().out == "first\nbetween\nsecond\n"


def test_a_job_that_exits_after_its_report_keeps_its_code(capsys):
    def report(cfg):
        yield "2 groups leak"
        raise SystemExit(1)

    with pytest.raises(SystemExit) as e:
        run_job(IngestJob, ["src"], "t", report)
    assert e.value.code == 1
    assert capsys.readouterr().out == "2 groups leak\n"


def test_config_errors_exit_2_after_lines_already_printed(capsys):
    from smartray.errors import ConfigError

    def bad(cfg):
        yield "started"
        raise ConfigError("no such snapshot")

    with pytest.raises(SystemExit) as e:
        run_job(IngestJob, ["src"], "smartray x", bad)
    assert e.value.code == 2
    out = capsys.readouterr()
    assert (out.out, out.err) == ("started\n", "smartray x: error: no such snapshot\n")


def test_cli_and_the_registry_agree_and_an_unknown_job_name_is_a_config_error():
    from smartray.errors import ConfigError
    from smartray.jobrun import JOBS, job_settings

    assert cli.job_names() == sorted(JOBS)
    assert job_settings("check_leaks") is job_settings("check-leaks")
    with pytest.raises(ConfigError, match="jobs: augment, check-leaks"):
        job_settings("nope")
