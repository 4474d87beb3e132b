import errno
import os
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from smartray.ingest.ops import ingest_block, is_known, known_id_index
from smartray.ingest.outcomes import KNOWN, NEW, REJECTED
from smartray.sanitize import SanitizeConfig, sha256_hex
from smartray.sources import LocalReader, list_local
from smartray.tables import LakeLocation
from smartray.testing import files

CFG = SanitizeConfig(blur=False)


class FailingReader(LocalReader):
    """Reads like LocalReader, except that reading `fail_name` raises EIO."""

    def __init__(self, fail_name):
        self.fail_name = fail_name

    def read_file(self, path, max_bytes=None):
        if path.endswith(self.fail_name):
            raise OSError(errno.EIO, os.strerror(errno.EIO), path)
        return super().read_file(path, max_bytes)


def run_block(src, lake, known=(), reader=None, cfg=CFG):
    """The block's part, and its outcomes by file name."""
    listing = list_local([str(src)])
    out = ingest_block(
        listing.entries,
        config=cfg,
        location=LakeLocation.from_uri(lake),
        run_id="run-1",
        known_ids=known_id_index(pa.array(list(known), pa.string())),
        reader=reader or LocalReader(),
    )
    assert out.started <= out.finished
    return out.part, {o.uri.rsplit("/", 1)[1]: o for o in out.outcomes}


def test_one_result_per_input_and_one_part(tmp_path, lake_dir):
    src = tmp_path / "src"
    src.mkdir()
    a = files.jpeg(files.pattern(16, 16))
    (src / "a.jpg").write_bytes(a)
    (src / "a again.jpg").write_bytes(a)
    (src / "b.png").write_bytes(files.png(files.pattern(16, 16, seed=1)))
    (src / "bad.jpg").write_bytes(files.random_bytes())
    (src / "big.png").write_bytes(files.png(files.pattern(64, 64)))
    part, res = run_block(src, lake_dir, cfg=SanitizeConfig(blur=False, max_bytes=4000))
    assert len(res) == 5
    assert {res["a again.jpg"].status, res["a.jpg"].status} == {NEW, KNOWN}
    assert res["b.png"].status == NEW
    assert (res["bad.jpg"].status, res["bad.jpg"].reason) == (REJECTED, "corrupt")
    assert (res["big.png"].status, res["big.png"].reason) == (REJECTED, "too_large")
    assert res["a.jpg"].asset_id == sha256_hex(a)
    written = pq.read_table(f"{lake_dir}/assets/{part.path}")
    assert written.num_rows == part.num_records == 2
    assert set(written.column("run_id").to_pylist()) == {"run-1"}


def test_known_assets_are_not_decoded_or_written(tmp_path, lake_dir):
    src = tmp_path / "src"
    src.mkdir()
    data = files.jpeg(files.pattern(16, 16))
    (src / "a.jpg").write_bytes(data)
    part, res = run_block(src, lake_dir, known=[sha256_hex(data)])
    assert res["a.jpg"].status == KNOWN
    assert part is None
    assert not (Path(lake_dir) / "assets").exists()


def test_a_failed_read_is_unreadable_and_the_rest_go_on(tmp_path, lake_dir):
    src = tmp_path / "src"
    src.mkdir()
    (src / "ok.png").write_bytes(files.png(files.pattern(8, 8)))
    (src / "flaky.png").write_bytes(files.png(files.pattern(8, 8, seed=3)))
    _, res = run_block(src, lake_dir, reader=FailingReader("flaky.png"))
    assert (res["flaky.png"].status, res["flaky.png"].reason) == (REJECTED, "unreadable")
    assert "Input/output error" in res["flaky.png"].detail
    assert res["ok.png"].status == NEW


def test_a_file_that_grew_past_the_limit_after_listing_is_not_read_whole(tmp_path, lake_dir):
    src = tmp_path / "src"
    src.mkdir()
    (src / "growing.png").write_bytes(files.png(files.pattern(8, 8)))
    listing = list_local([str(src)])
    with open(src / "growing.png", "ab") as f:
        f.write(b"\0" * 10_000)  # still being written when the worker reads it

    class CountingReader(LocalReader):
        def read_file(self, path, max_bytes=None):
            data = super().read_file(path, max_bytes)
            self.got = len(data)
            return data

    reader = CountingReader()
    out = ingest_block(
        listing.entries,
        config=SanitizeConfig(blur=False, max_bytes=1000),
        location=LakeLocation.from_uri(lake_dir),
        run_id="r",
        known_ids=known_id_index(pa.array([], pa.string())),
        reader=reader,
    ).outcomes
    assert out[0].reason == "too_large"
    assert reader.got == 1001


def test_empty_file_is_never_read(tmp_path, lake_dir):
    src = tmp_path / "src"
    src.mkdir()
    (src / "empty.jpg").write_bytes(b"")
    _, res = run_block(src, lake_dir, reader=FailingReader("empty.jpg"))
    assert res["empty.jpg"].reason == "empty"


@pytest.mark.parametrize("n", [0, 1, 5, 100])
def test_known_index_lookup(n):
    ids = [sha256_hex(str(i).encode()) for i in range(n)]
    index = known_id_index(pa.array(ids, pa.string()))
    assert all(is_known(index, i) for i in ids)
    assert not is_known(index, sha256_hex(b"other"))
