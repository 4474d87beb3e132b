import os
import pickle

import pytest

from smartray.errors import SourceError
from smartray.sources import LocalReader, SourceEntry, list_local
from smartray.types import Reason, RejectedInput


@pytest.fixture
def tree(tmp_path):
    root = tmp_path / "src"
    (root / "a" / "b").mkdir(parents=True)
    (root / "top.jpg").write_bytes(b"1")
    (root / "a" / "mid file.png").write_bytes(b"22")
    (root / "a" / "b" / "déjà vu ü.jpg").write_bytes(b"333")
    (root / ".hidden.jpg").write_bytes(b"x")
    (root / ".git").mkdir()
    (root / ".git" / "x.jpg").write_bytes(b"x")
    outside = tmp_path / "secret.jpg"
    outside.write_bytes(b"secret")
    (tmp_path / "outdir").mkdir()
    (tmp_path / "outdir" / "o.jpg").write_bytes(b"o")
    os.symlink(outside, root / "escape.jpg")
    os.symlink(tmp_path / "outdir", root / "escape_dir")
    os.symlink(root / "top.jpg", root / "a" / "link-to-top.jpg")
    os.symlink(root / "a", root / "a" / "b" / "loop")
    os.symlink(root / "missing.jpg", root / "dangling.jpg")
    return root


def test_recursive_listing_with_unicode_and_spaces(tree):
    listing = list_local([str(tree)])
    uris = [e.uri for e in listing.entries]
    assert str(tree / "a" / "b" / "déjà vu ü.jpg") in uris
    assert str(tree / "a" / "mid file.png") in uris
    assert str(tree / "top.jpg") in uris
    assert str(tree / "a" / "link-to-top.jpg") in uris  # inside the root: followed
    assert not any("hidden" in u or ".git" in u for u in uris)
    sizes = {os.path.basename(e.uri): e.size for e in listing.entries}
    assert sizes["déjà vu ü.jpg"] == 3


def test_symlinks_leaving_the_root_are_refused(tree):
    listing = list_local([str(tree)])
    rejected = {os.path.basename(r.uri): r.reason for r in listing.rejections}
    assert rejected["escape.jpg"] == Reason.OUTSIDE_ROOT
    assert rejected["escape_dir"] == Reason.OUTSIDE_ROOT
    assert rejected["dangling.jpg"] == Reason.UNREADABLE
    assert not any("secret" in e.uri or "o.jpg" in e.uri for e in listing.entries)


def test_symlink_loop_terminates_and_counts_every_input(tree):
    listing = list_local([str(tree)])
    assert listing.count == len(listing.entries) + len(listing.rejections)
    assert len({e.uri for e in listing.entries}) == len(listing.entries)


def test_overlapping_sources_list_each_file_once(tree):
    listing = list_local([str(tree), str(tree / "a"), str(tree / "top.jpg")])
    assert len({e.uri for e in listing.entries}) == len(listing.entries)
    assert len(listing.entries) == len(list_local([str(tree)]).entries)


def test_single_file_source(tree):
    listing = list_local([str(tree / "top.jpg")])
    assert [e.uri for e in listing.entries] == [str(tree / "top.jpg")]


def test_missing_source_is_a_usage_error(tmp_path):
    with pytest.raises(SourceError, match="does not exist"):
        list_local([str(tmp_path / "nope")])


def test_reader_reads_and_reports_failures(tree):
    entry = next(e for e in list_local([str(tree)]).entries if e.uri.endswith("top.jpg"))
    assert LocalReader().read(entry) == b"1"
    gone = SourceEntry(uri=str(tree / "vanished.jpg"), size=1, root=str(tree))
    with pytest.raises(RejectedInput) as e:
        LocalReader().read(gone)
    assert e.value.reason == Reason.UNREADABLE


def test_reader_rechecks_the_root(tree, tmp_path):
    link = tree / "later.jpg"
    os.symlink(tmp_path / "secret.jpg", link)
    with pytest.raises(RejectedInput) as e:
        LocalReader().read(SourceEntry(uri=str(link), size=6, root=str(tree)))
    assert e.value.reason == Reason.OUTSIDE_ROOT


def test_a_folder_swapped_for_a_link_out_of_the_root_after_listing_is_refused(tree, tmp_path):
    entry = next(e for e in list_local([str(tree)]).entries if e.uri.endswith("mid file.png"))
    reader = LocalReader()
    assert reader.read(entry) == b"22"
    os.rename(tree / "a", tmp_path / "moved")
    (tmp_path / "outdir" / "mid file.png").write_bytes(b"stolen")
    os.symlink(tmp_path / "outdir", tree / "a")
    # a fresh reader (each Ray task gets one, unpickled without the folders it resolved)
    for fresh in (LocalReader(), pickle.loads(pickle.dumps(reader))):
        with pytest.raises(RejectedInput) as e:
            fresh.read(entry)
        assert e.value.reason == Reason.OUTSIDE_ROOT


def test_a_file_swapped_for_a_link_out_of_the_root_is_refused_by_a_warm_reader(tree, tmp_path):
    entry = next(e for e in list_local([str(tree)]).entries if e.uri.endswith("top.jpg"))
    reader = LocalReader()
    assert reader.read(entry) == b"1"
    os.remove(entry.uri)
    os.symlink(tmp_path / "secret.jpg", entry.uri)
    with pytest.raises(RejectedInput) as e:
        reader.read(entry)
    assert e.value.reason == Reason.OUTSIDE_ROOT
