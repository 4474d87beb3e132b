"""Near-duplicates and splits on a real low-texture corpus: 2,000 Fashion-MNIST test images.

The flow a new user runs: PNGs in class folders, ingest, import the folders as labels,
approve them, curate, split. Hash agreement on such images is mostly chance (27.5 % of
the pairs within the hash thresholds join different classes); the groups must not chain
into one giant group, and the split must keep its ratios.
"""

from collections import Counter

import pytest

from jobs import curate as curate_job
from jobs import import_labels as import_job
from jobs import ingest as ingest_job
from jobs import ontology as ontology_job
from jobs import review as review_job
from jobs import split as split_job
from smartray import Lake
from smartray.testing import fashion_mnist

N = 2000


@pytest.fixture(scope="module")
def fashion_lake(tmp_path_factory):
    if fashion_mnist.data_dir() is None:
        pytest.fail("Fashion-MNIST is missing: `make test` unpacks it under .cache/")
    images, labels = fashion_mnist.load("test")
    root = tmp_path_factory.mktemp("fashion")
    fashion_mnist.write_pngs(root, images[:N], labels[:N])
    lake_dir = str(tmp_path_factory.mktemp("fashion-lake") / "lake")
    ingest_job.main([str(root), "--lake", lake_dir, "--no-blur"])
    ontology_job.main(["add", "schemas/ontologies/fashion-mnist.yaml", "--lake", lake_dir])
    import_job.main([str(root), "--format", "folders", "--annotator", "fashion-mnist",
                     "--lake", lake_dir])  # fmt: skip
    review_job.main(["--approve", "--reviewer", "lead", "--lake", lake_dir,
                     "--where", "annotator = 'fashion-mnist'"])  # fmt: skip
    return lake_dir


def test_groups_do_not_chain_across_classes_and_the_split_keeps_its_ratios(fashion_lake, capsys):
    lake = Lake(fashion_lake)
    curate_job.main(["--lake", fashion_lake])
    out = capsys.readouterr().out
    assert "curate" in out
    label = {
        r["asset_id"]: r["class_name"]
        for r in lake.table("labels", columns=["asset_id", "class_name"]).to_pylist()
    }
    assert len(label) == N
    groups = lake.table("dup_groups", columns=["asset_id", "dup_group"]).to_pylist()
    # the near pairs the groups are made of: each member with its representative
    pairs = [(r["asset_id"], r["dup_group"]) for r in groups if r["asset_id"] != r["dup_group"]]
    cross = sum(label[a] != label[b] for a, b in pairs)
    # hash pairs alone: 27.5 % between classes, one group of 85 % (the figures);
    # confirmed on pixels, 1 of 163 pairs on the 10,000 (BENCHMARKS.md)
    assert pairs, "no near pairs at all: the bound below would hold for nothing"
    assert cross <= 0.01 * len(pairs), (cross, len(pairs))
    sizes = Counter(r["dup_group"] for r in groups)
    assert max(sizes.values()) <= 0.01 * N, sizes.most_common(3)
    members: dict[str, set[str]] = {}
    for r in groups:
        members.setdefault(r["dup_group"], set()).add(label[r["asset_id"]])
    assert sum(len(c) > 1 for c in members.values()) <= max(1, cross)

    split_job.main(["--lake", fashion_lake, "--split", "main"])  # tolerance 0.05
    shares = Counter(r["split"] for r in lake.table("splits", columns=["split"]).to_pylist())
    total = sum(shares.values())
    for name, ratio in (("train", 0.8), ("val", 0.1), ("test", 0.1)):
        assert abs(shares[name] / total - ratio) <= 0.05, shares


def test_a_rerun_adds_nothing_and_a_rules_change_regroups(fashion_lake, capsys):
    lake = Lake(fashion_lake)
    before = lake.version("dup_groups")
    curate_job.main(["--lake", fashion_lake])
    assert "rows written 0" in capsys.readouterr().out
    assert lake.version("dup_groups") == before
    # other confirmation settings are other rules: every asset is regrouped
    curate_job.main(["--lake", fashion_lake, "--confirm-threshold", "0.99"])
    assert f"assets {N} ({N} new)" in capsys.readouterr().out
