"""Splits and leak checks on a lake of synthetic rows (no Ray)."""

import datetime as dt
from collections import Counter

import pyarrow as pa
import pytest

from jobs import check_leaks as check_leaks_job
from jobs import split as split_job
from smartray import Lake
from smartray.errors import ConfigError
from smartray.split.assign import assign_groups, by_hash, parse_ratios, unit_hash
from smartray.tables import ASSETS, DUP_GROUPS, LakeLocation
from smartray.tables.commit import commit_rows
from smartray.testing import rows

NOW = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def add(lake_dir, n, start=0, group_size=3, app="a"):
    """`n` assets from `start`; every `group_size` consecutive ones are near-duplicates;
    `media_type` plays the label (two classes)."""
    loc = LakeLocation.from_uri(lake_dir)
    table = rows(ASSETS, n=start + n).slice(start)
    labels = pa.array(["cat" if (i // group_size) % 3 else "dog" for i in range(start, start + n)])
    table = table.set_column(table.schema.get_field_index("media_type"), "media_type", labels)
    commit_rows(loc, ASSETS, table, app_id=app)
    ids = table.column("asset_id").to_pylist()
    members = {}
    for k, aid in enumerate(ids):
        members.setdefault((start + k) // group_size, []).append(aid)
    groups = [{"asset_id": a, "dup_group": min(m), "threshold": 24, "run_id": app,
               "grouped_at": NOW} for m in members.values() for a in m]  # fmt: skip
    commit_rows(loc, DUP_GROUPS, groups, app_id=app)
    return ids


def assignment(lake_dir, name):
    table = Lake(lake_dir).table("splits").to_pylist()
    return {r["asset_id"]: r["split"] for r in table if r["split_name"] == name}


def test_groups_stay_whole_and_assignments_survive_growth(lake_dir, capsys):
    add(lake_dir, 900)
    split_job.main(["--lake", lake_dir, "--name", "s", "--ratios", "train=0.6,val=0.2,test=0.2"])
    out = capsys.readouterr().out
    first = assignment(lake_dir, "s")
    assert len(first) == 900
    shares = Counter(first.values())
    for name, want in (("train", 0.6), ("val", 0.2), ("test", 0.2)):
        # 300 groups, each placed by its own hash: within 3 standard deviations
        assert abs(shares[name] / 900 - want) < 3 * (want * (1 - want) / 300) ** 0.5
        assert f"{name:<8} {shares[name] / 900:.3f}" in out  # realized ratios printed
    check_leaks_job.main(["--lake", lake_dir, "--split", "s"])
    assert "check-leaks 's': 0 group(s) straddle splits" in capsys.readouterr().out
    add(lake_dir, 90, start=900, app="b")
    split_job.main(["--lake", lake_dir, "--name", "s", "--ratios", "train=0.6,val=0.2,test=0.2"])
    assert "90 newly assigned, 0 moved" in capsys.readouterr().out
    second = assignment(lake_dir, "s")
    assert {a: second[a] for a in first} == first  # nothing already assigned moved


def test_stratified_by_label_gives_each_label_the_ratios(lake_dir, capsys):
    add(lake_dir, 300)
    split_job.main(["--lake", lake_dir, "--name", "st", "--ratios", "train=0.5,test=0.5",
                    "--stratify-by", "media_type"])  # fmt: skip
    got = assignment(lake_dir, "st")
    table = Lake(lake_dir).table("assets", columns=["asset_id", "media_type"]).to_pylist()
    labels = {r["asset_id"]: r["media_type"] for r in table}
    for label in ("cat", "dog"):
        mine = [s for a, s in got.items() if labels[a] == label]
        # whole groups of 3: each label within one group of half
        assert abs(mine.count("train") - len(mine) / 2) <= 3


def test_plain_split_leaks_and_leak_check_reads_a_split_file(lake_dir, tmp_path, capsys):
    ids = add(lake_dir, 60)
    split_job.main(["--lake", lake_dir, "--name", "p", "--no-groups", "--ratios",
                    "train=0.5,test=0.5"])  # fmt: skip
    check_leaks_job.main(["--lake", lake_dir, "--split", "p"])
    out = capsys.readouterr().out
    assert "0 group(s)" not in out
    # a split made elsewhere, as CSV: every asset of group 0 in another split
    lines = ["asset_id,split"] + [f"{a},{'test' if k == 0 else 'train'}" for k, a in enumerate(ids)]
    path = tmp_path / "theirs.csv"
    path.write_text("\n".join(lines) + "\n")
    check_leaks_job.main(["--lake", lake_dir, "--split-file", str(path), "--limit", "5"])
    out = capsys.readouterr().out
    assert ": 1 group(s) straddle splits (3 assets)" in out
    assert f"group {min(ids[:3])}: test 1, train 2" in out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--ratios", "train=0.8,test=0.1"], "sum to 0.9, not 1"),
        (["--ratios", "train=0.5,train=0.5"], "'train' appears twice"),
        (["--ratios", "train"], "is not name=share"),
        (
            ["--group-by", "patient"],
            "--group-by 'patient': no such column; valid columns: asset_id",
        ),
    ],
)
def test_bad_split_settings_write_nothing(lake_dir, capsys, argv, message):
    add(lake_dir, 6)
    with pytest.raises(SystemExit) as e:
        split_job.main(["--lake", lake_dir, "--name", "x", *argv])
    assert e.value.code == 2
    assert message in capsys.readouterr().err
    assert not Lake(lake_dir).exists("splits")


def test_same_name_other_settings_and_unknown_split_are_errors(lake_dir, capsys):
    add(lake_dir, 6)
    split_job.main(["--lake", lake_dir, "--name", "s", "--allow-skew"])  # 2 groups of 3
    with pytest.raises(SystemExit) as e:
        split_job.main(["--lake", lake_dir, "--name", "s", "--seed", "1", "--allow-skew"])
    assert e.value.code == 2
    assert "split 's' exists with other settings" in capsys.readouterr().err
    with pytest.raises(SystemExit) as e:
        check_leaks_job.main(["--lake", lake_dir, "--split", "nope"])
    assert e.value.code == 2
    assert "unknown split 'nope'; stored splits: ['s']" in capsys.readouterr().err


def test_a_group_too_big_for_the_ratios_writes_nothing_unless_skew_is_allowed(lake_dir, capsys):
    add(lake_dir, 6)  # two groups of 3: 50 % each cannot make 80/10/10
    with pytest.raises(SystemExit) as e:
        split_job.main(["--lake", lake_dir, "--split", "s"])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert "split 's': the ratios cannot hold within --tolerance 0.05" in err
    assert "3 assets (50.0 %)" in err
    assert not Lake(lake_dir).exists("splits")
    split_job.main(["--lake", lake_dir, "--split", "s", "--tolerance", "0.5"])
    assert Lake(lake_dir).table("splits").num_rows == 6


def test_uncurated_assets_need_curate_first(lake_dir, capsys):
    add(lake_dir, 6)
    commit_rows(LakeLocation.from_uri(lake_dir), ASSETS, rows(ASSETS, n=8).slice(6), app_id="x")
    with pytest.raises(SystemExit):
        split_job.main(["--lake", lake_dir, "--name", "s"])
    assert "2 asset(s) have no near-duplicate group yet: run `smartray curate`" in (
        capsys.readouterr().err
    )


def test_hash_assignment_is_a_pure_function_of_seed_and_group():
    ratios = parse_ratios("a=0.3,b=0.7")
    assert by_hash(0.29, ratios) == "a"
    assert by_hash(0.31, ratios) == "b"
    one = assign_groups({"g1": 1, "g2": 5}, ratios, 4)
    two = assign_groups({"g0": 2, "g1": 1, "g2": 5, "g9": 1}, ratios, 4)
    assert {g: two[g] for g in one} == one
    assert unit_hash(4, "g1") != unit_hash(5, "g1")
    with pytest.raises(ConfigError):
        parse_ratios("a=-0.5,b=1.5")
