"""`labels` holds one image class per asset and ontology version: the last approved."""

import datetime as dt

import pyarrow as pa

from smartray.annotate.review import _one_class_per_asset

T0 = dt.datetime(2026, 12, 1, tzinfo=dt.UTC)


def approved(event_id, asset, cls, ontology, version, minute, kind="class"):
    return {"event_id": event_id, "asset_id": asset, "kind": kind, "class_name": cls,
            "ontology": ontology, "ontology_version": version,
            "decided_at": T0 + dt.timedelta(minutes=minute)}  # fmt: skip


def test_the_last_class_approved_wins_within_an_ontology_version_only():
    rows = [
        approved("e1", "a", "seven", "digits", 1, 0),
        approved("e2", "a", "one", "digits", 1, 5),  # later: replaces e1
        approved("e3", "a", "one", "digits-loop", 1, 1),  # another ontology: kept
        approved("e4", "a", "uno", "digits", 2, 2),  # another version: kept
        approved("e5", "a", "box", "digits", 1, 9, kind="box"),  # boxes are many
    ]
    kept = _one_class_per_asset(pa.Table.from_pylist(rows))
    assert sorted(kept["event_id"].to_pylist()) == ["e2", "e3", "e4", "e5"]
