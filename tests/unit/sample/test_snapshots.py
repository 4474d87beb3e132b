"""Snapshots on a lake of synthetic asset rows (no Ray): filters, strategies, read-back."""

from collections import Counter

import numpy as np
import pyarrow as pa
import pytest

from jobs import sample as sample_job
from smartray import Lake
from smartray.errors import ConfigError
from smartray.sample.strategies import draw_balanced, draw_diverse, draw_stratified
from smartray.tables import ASSETS, LakeLocation
from smartray.tables.commit import commit_rows
from smartray.testing import rows

KINDS = ["cat"] * 20 + ["dog"] * 12 + ["fox"] * 8


def add_assets(lake_dir, n, start=0, app="a1"):
    table = rows(ASSETS, n=start + n).slice(start)
    table = table.set_column(
        table.schema.get_field_index("media_type"), "media_type",
        pa.array([KINDS[i % len(KINDS)] for i in range(start, start + n)]),
    )  # fmt: skip
    return commit_rows(LakeLocation.from_uri(lake_dir), ASSETS, table, app_id=app)


@pytest.fixture
def lake40(lake_dir):
    add_assets(lake_dir, 40)
    return lake_dir


def test_snapshot_reads_back_identically_after_the_lake_grows(lake40, capsys):
    sample_job.main(["--lake", lake40, "--name", "s1", "--n", "10", "--where", "blur > 5.0"])
    assert "10 of 35 matching assets" in capsys.readouterr().out
    lake = Lake(lake40)
    first = lake.snapshot("s1", columns=["asset_id", "blur"])
    assert first.num_rows == 10
    assert min(first.column("blur").to_pylist()) > 5
    add_assets(lake40, 20, start=40, app="a2")  # a new assets version
    again = lake.snapshot("s1", columns=["asset_id", "blur"])
    assert again.equals(first)
    assert list(lake.snapshot("s1", to="polars")["asset_id"]) == first["asset_id"].to_pylist()
    # the same spec and seed draw the same members; another seed others
    sample_job.main(["--lake", lake40, "--name", "s2", "--n", "10", "--where", "blur > 5.0"])
    sample_job.main(["--lake", lake40, "--name", "s3", "--n", "10", "--seed", "7"])
    s2 = lake.snapshot("s2", columns=["asset_id"]).column("asset_id").to_pylist()
    s3 = lake.snapshot("s3", columns=["asset_id"]).column("asset_id").to_pylist()
    assert s2 != first.column("asset_id").to_pylist()  # s2 was drawn from the grown lake
    assert set(s3) != set(s2)
    pinned = {r["snapshot"]: r["assets_version"] for r in lake.table("snapshots").to_pylist()}
    assert pinned == {"s1": 1, "s2": 2, "s3": 2}


def test_stratified_and_balanced_draws(lake40, capsys):
    sample_job.main(["--lake", lake40, "--name", "st", "--strategy", "stratified", "--n", "20",
                     "--by", "media_type"])  # fmt: skip
    assert "(cat 10, dog 6, fox 4)" in capsys.readouterr().out
    sample_job.main(["--lake", lake40, "--name", "bal", "--strategy", "balanced", "--n", "21",
                     "--by", "media_type"])  # fmt: skip
    assert "(cat 7, dog 7, fox 7)" in capsys.readouterr().out


def test_strategies_directly():
    values = ["a"] * 6 + ["b"] * 3 + [None]
    assert Counter(values[i] for i in draw_stratified(values, 3, 0)) == {"a": 2, "b": 1}
    # a short class leaves its turns to the others
    assert Counter(values[i] for i in draw_balanced(values, 8, 0)) == {"a": 4, "b": 3, None: 1}
    # diverse: duplicates of one hash are not picked while another hash is left
    sig = np.array([[0, 0, 0, 2**64 - 1, 2**32 - 1]], dtype=np.uint64)
    picked = draw_diverse(sig, 3, 0).tolist()
    assert len({int(sig[0, i]) for i in picked}) == 3


@pytest.mark.parametrize(
    ("where", "message"),
    [
        ("blur >", "does not parse"),
        ("blurr > 3", "unknown column(s) blurr; valid columns: asset_id, media_type"),
        ("blur > 'a'", "cannot be evaluated"),
        ("blur > 1e9", "matches no asset"),
    ],
)
def test_bad_filters_are_usage_errors_and_write_nothing(lake40, capsys, where, message):
    with pytest.raises(SystemExit) as e:
        sample_job.main(["--lake", lake40, "--name", "x", "--n", "3", "--where", where])
    assert e.value.code == 2
    assert message in capsys.readouterr().err
    assert not Lake(lake40).exists("snapshots")


def test_names_are_never_reused_and_unknown_names_are_errors(lake40, capsys):
    sample_job.main(["--lake", lake40, "--name", "s", "--n", "3"])
    with pytest.raises(SystemExit) as e:
        sample_job.main(["--lake", lake40, "--name", "s", "--n", "4"])
    assert e.value.code == 2
    assert "snapshot 's' exists" in capsys.readouterr().err
    with pytest.raises(ConfigError, match="unknown snapshot 'nope'; snapshots: s"):
        Lake(lake40).snapshot("nope")
    with pytest.raises(SystemExit):
        sample_job.main(["--lake", lake40, "--name", "t", "--n", "3", "--strategy", "best"])
