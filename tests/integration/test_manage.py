"""Managing the lake on the suite's Ray: near-duplicate groups, leak-free splits."""

import shutil

import pytest

from jobs import check_leaks as check_leaks_job
from jobs import curate as curate_job
from jobs import ingest as ingest_job
from jobs import split as split_job
from smartray import Lake
from smartray.testing.corpus import write_corpus


def ids_by_file(lake):
    rows = lake.table("asset_sources", columns=["asset_id", "source_uri"]).to_pylist()
    return {r["source_uri"].rsplit("/", 2)[-2] + "/" + r["source_uri"].rsplit("/", 1)[-1]:
            r["asset_id"] for r in rows}  # fmt: skip


@pytest.fixture(scope="module")
def curated(tmp_path_factory):
    """A lake of the planted corpus, ingested and curated once for the module."""
    root = tmp_path_factory.mktemp("corpus")
    planted = write_corpus(root)
    lake_dir = str(tmp_path_factory.mktemp("managed") / "lake")
    ingest_job.main([str(root), "--lake", lake_dir, "--no-blur"])
    curate_job.main(["--lake", lake_dir])
    return lake_dir, planted, root


@pytest.fixture
def lake_copy(curated, tmp_path):
    lake_dir, planted, root = curated
    copy = str(tmp_path / "lake")
    shutil.copytree(lake_dir, copy)
    return copy, planted, root


def test_curate_groups_variants_with_their_original_and_frames_by_video(curated, capsys):
    lake_dir, planted, _ = curated
    lake = Lake(lake_dir)
    ids = ids_by_file(lake)
    rows = lake.table("dup_groups", columns=["asset_id", "dup_group"]).to_pylist()
    groups = {r["asset_id"]: r["dup_group"] for r in rows}
    assets = lake.table("assets", columns=["asset_id", "video_id"]).to_pylist()
    assert set(groups) == {a["asset_id"] for a in assets}  # every asset has a group
    for rel, original in planted.items():
        assert groups[ids[rel]] == groups[ids[original]], rel
    originals = {groups[ids[o]] for o in set(planted.values())}
    assert len(originals) == len(set(planted.values()))  # no two originals merged
    frames = [a["asset_id"] for a in assets if a["video_id"]]
    assert len(frames) >= 2
    assert len({groups[f] for f in frames}) == 1
    # a group is named after its representative, one of its members
    for g in set(groups.values()):
        assert groups[g] == g


def test_curate_rerun_writes_nothing_and_new_assets_join_groups(lake_copy, tmp_path, capsys):
    lake_dir, _planted, root = lake_copy
    lake = Lake(lake_dir)
    before = lake.version("dup_groups")
    capsys.readouterr()
    curate_job.main(["--lake", lake_dir])
    out = capsys.readouterr().out
    assert "(0 new)" in out
    assert "rows written 0" in out
    assert lake.version("dup_groups") == before
    # a brighter copy of an original arrives later: only it is grouped, into its group
    from smartray.sanitize.cv import cv2

    more = tmp_path / "more"
    more.mkdir()
    img = cv2.imread(str(root / "cats/astronaut.jpg"))
    cv2.imwrite(str(more / "astronaut-bright.jpg"), cv2.convertScaleAbs(img, alpha=1.1))
    ingest_job.main([str(more), "--lake", lake_dir, "--no-blur"])
    curate_job.main(["--lake", lake_dir])
    out = capsys.readouterr().out
    ids = ids_by_file(lake)
    groups = {r["asset_id"]: r["dup_group"] for r in lake.table("dup_groups").to_pylist()}
    new_id = ids["more/astronaut-bright.jpg"]
    assert groups[new_id] == groups[ids["cats/astronaut.jpg"]]
    # it joins the stored group: only its own row is written, the group keeps its name
    assert groups[new_id] != new_id
    assert "(1 new)" in out
    assert "rows written 1;" in out


def test_split_keeps_groups_whole_and_plain_split_leaks(lake_copy, capsys):
    lake_dir, _planted, _ = lake_copy
    capsys.readouterr()
    split_job.main(["--lake", lake_dir, "--name", "v1", "--ratios", "train=0.5,test=0.5",
                    "--allow-skew"])  # a 31-asset corpus: groups of up to 6  # fmt: skip
    out = capsys.readouterr().out
    assert "train" in out
    assert "test" in out
    assert "newly assigned" in out
    check_leaks_job.main(["--lake", lake_dir, "--split", "v1"])
    assert "0 group(s) straddle splits" in capsys.readouterr().out
    split_job.main(
        ["--lake", lake_dir, "--name", "plain", "--ratios", "train=0.5,test=0.5", "--no-groups"]
    )
    capsys.readouterr()
    check_leaks_job.main(["--lake", lake_dir, "--split", "plain"])
    out = capsys.readouterr().out
    n = int(out.split(": ", 1)[1].split(" group")[0])
    assert n > 0, out
    with pytest.raises(SystemExit) as e:
        check_leaks_job.main(["--lake", lake_dir, "--split", "plain", "--fail"])
    assert e.value.code == 1
    # the stored assignment is what the leak check read
    rows = Lake(lake_dir).table("splits").to_pylist()
    assert {r["split_name"] for r in rows} == {"v1", "plain"}


def test_augment_children_are_reproducible_and_stay_with_their_parent(curated, tmp_path, capsys):
    from jobs import augment as augment_job
    from jobs import sample as sample_job

    lake_dir, _, _ = curated
    lakes = [str(tmp_path / "a"), str(tmp_path / "b")]
    for copy in lakes:
        shutil.copytree(lake_dir, copy)
        split_job.main(["--lake", copy, "--name", "v1", "--allow-skew"])
        sample_job.main(["--lake", copy, "--name", "photos", "--n", "4",
                         "--where", "media_type = 'image'"])  # fmt: skip
        capsys.readouterr()
        augment_job.main(["--lake", copy, "--snapshot", "photos", "--copies", "2", "--seed", "3",
                          "--ops", "flip,rotate:20,crop:0.8,jitter,blur,noise,cutout"])  # fmt: skip
        assert "4 parents x 2 copies: 8 new children" in capsys.readouterr().out
    a, b = Lake(lakes[0]), Lake(lakes[1])
    # the snapshot reads back as a Ray dataset too
    assert sorted(r["asset_id"] for r in a.snapshot("photos", to="ray").take_all()) == sorted(
        a.snapshot("photos", columns=["asset_id"]).column("asset_id").to_pylist()
    )

    def kids(lake):
        t = lake.table("assets", columns=["asset_id", "parent_id", "data", "augment_ops",
                                          "augment_seed", "media_type"])  # fmt: skip
        return {r["asset_id"]: r for r in t.to_pylist() if r["media_type"] == "augmented"}

    ka, kb = kids(a), kids(b)
    assert len(ka) == 8
    assert {k: r["data"] for k, r in ka.items()} == {k: r["data"] for k, r in kb.items()}
    assert all(r["augment_seed"] == 3 and '"op":"rotate"' in r["augment_ops"] for r in ka.values())
    groups = {r["asset_id"]: r["dup_group"] for r in a.table("dup_groups").to_pylist()}
    splits = {r["asset_id"]: r["split"] for r in a.table("splits").to_pylist()}
    for kid, r in ka.items():
        assert groups[kid] == groups[r["parent_id"]]
        assert splits[kid] == splits[r["parent_id"]]
    check_leaks_job.main(["--lake", lakes[0], "--split", "v1"])
    assert "0 group(s) straddle splits" in capsys.readouterr().out
    # the same run again makes nothing new
    version = a.version("assets")
    augment_job.main(["--lake", lakes[0], "--snapshot", "photos", "--copies", "2", "--seed", "3",
                      "--ops", "flip,rotate:20,crop:0.8,jitter,blur,noise,cutout"])  # fmt: skip
    assert "0 new children (8 already there)" in capsys.readouterr().out
    assert a.version("assets") == version
    with pytest.raises(SystemExit) as e:
        augment_job.main(["--lake", lakes[0], "--snapshot", "photos", "--ops", "twirl"])
    assert e.value.code == 2
    assert "unknown op 'twirl'; ops: flip, rotate" in capsys.readouterr().err


def raw_files(lake_dir):
    from pathlib import Path

    return [p for p in Path(lake_dir).rglob("*") if p.is_file()]


def test_erase_removes_an_asset_its_children_and_a_video_down_to_the_bytes(lake_copy, capsys):
    from jobs import augment as augment_job
    from jobs import erase as erase_job
    from jobs import sample as sample_job
    from smartray.errors import ConfigError

    lake_dir, _, _ = lake_copy
    lake = Lake(lake_dir)
    ids = ids_by_file(lake)
    astro = ids["cats/astronaut.jpg"]
    video = lake.table("videos", columns=["video_id"]).column("video_id")[0].as_py()
    split_job.main(["--lake", lake_dir, "--name", "v1", "--allow-skew"])
    coffee = ids["dogs/coffee.jpg"]
    sample_job.main(["--lake", lake_dir, "--name", "astro", "--n", "2",
                     "--where", f"asset_id IN ('{astro}', '{coffee}')"])  # fmt: skip
    augment_job.main(["--lake", lake_dir, "--snapshot", "astro", "--ops", "flip:1,noise",
                      "--copies", "2"])  # fmt: skip
    assets = {r["asset_id"]: r for r in lake.table("assets").to_pylist()}
    kids = [a for a, r in assets.items() if r["parent_id"] == astro]
    frames = [a for a, r in assets.items() if r["video_id"] == video]
    assert len(kids) == 2
    assert frames
    # distinctive runs of image bytes, from the middle of the entropy-coded data (headers
    # are shared by every JPEG of one quality); heavy columns are stored uncompressed
    datas = [assets[a]["data"] for a in [astro, *kids, *frames]]
    needles = [d[len(d) // 2 : len(d) // 2 + 64] for d in datas]
    assert all(any(n in p.read_bytes() for p in raw_files(lake_dir)) for n in needles)
    old_assets = lake.version("assets")
    # compaction leaves the old small files on disk until vacuum (7 days by default):
    # erasure must find them too
    from jobs import maintain as maintain_job

    maintain_job.main(["--lake", lake_dir, "--tables", "assets,dup_groups,splits"])
    on_disk = [p for p in raw_files(lake_dir) if p.parent.name == "assets"]
    assert len(on_disk) > len(lake.delta("assets").file_uris())
    capsys.readouterr()

    erase_job.main(["--lake", lake_dir, astro, video])
    out = capsys.readouterr().out
    assert f"{3 + len(frames)} asset(s) and 1 video(s) erased" in out
    gone = {astro, video, *kids, *frames}
    for name in ("assets", "asset_sources", "dup_groups", "splits", "snapshots"):
        left = set(lake.table(name, columns=["asset_id"]).column("asset_id").to_pylist())
        assert not (left & gone), name
    assert lake.table("videos").num_rows == 0
    # the bytes are gone from every file of the lake, log included
    for p in raw_files(lake_dir):
        data = p.read_bytes()
        assert not any(n in data for n in needles), p
    # what pinned the erased versions is marked; a pinned version no longer reads
    broken = [r for r in lake.table("runs").to_pylist() if r["broken_by"]]
    assert {r["job"] for r in broken} >= {"ingest", "sample", "augment"}
    with pytest.raises(ConfigError, match="no longer reproducible"):
        lake.snapshot("astro")
    with pytest.raises(Exception):  # noqa: B017, PT011 -- deltalake's own error for a lost file
        lake.table("assets", version=old_assets, columns=["asset_id", "data"])
    # the astronaut's variants lost their group; curate regroups them, without it
    assert "lost their duplicate group" in out
    curate_job.main(["--lake", lake_dir])
    groups = {r["asset_id"]: r["dup_group"] for r in lake.table("dup_groups").to_pylist()}
    assert groups[ids["cats/astronaut-q50.jpg"]] == groups[ids["cats/astronaut-half.png"]]
    assert set(groups) == set(lake.table("assets", columns=["asset_id"])["asset_id"].to_pylist())


def test_erase_refuses_unknown_and_malformed_ids(lake_copy, capsys):
    from jobs import erase as erase_job

    lake_dir, _, _ = lake_copy
    before = {i.name: i.version for i in Lake(lake_dir).describe()}
    for bad, message in [("a" * 64, "unknown id(s)"), ("../x", "64 lowercase hex digits")]:
        with pytest.raises(SystemExit) as e:
            erase_job.main(["--lake", lake_dir, bad])
        assert e.value.code == 2
        assert message in capsys.readouterr().err
    assert {i.name: i.version for i in Lake(lake_dir).describe()} == before


def test_erase_takes_ids_from_a_request_file(lake_copy, tmp_path, capsys):
    from jobs import erase as erase_job

    lake_dir, _, _ = lake_copy
    ids = ids_by_file(Lake(lake_dir))
    request = tmp_path / "ids.txt"
    request.write_text(f"# request 42\n{ids['dogs/coins.jpg']}\n\n")
    erase_job.main(["--lake", lake_dir, "--ids-file", str(request)])
    assert "1 asset(s) and 0 video(s) erased" in capsys.readouterr().out
    left = Lake(lake_dir).table("assets", columns=["asset_id"])["asset_id"].to_pylist()
    assert ids["dogs/coins.jpg"] not in left
