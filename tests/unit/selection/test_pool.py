"""The pool of an experiment at pinned versions: earlier picks, answered or not."""

import datetime as dt

import pyarrow as pa

from smartray.selection.pool import Pins, build_pool
from smartray.tables import ASSETS, Lake
from smartray.tables.catalog import BATCHES, LABEL_EVENTS
from smartray.testing import rows

NOW = dt.datetime(2026, 12, 1, tzinfo=dt.UTC)


def annotation(asset_id, ontology=("digits", 1)):
    return {"event_id": f"e-{asset_id}-{ontology[1]}", "asset_id": asset_id,
            "event": "annotation", "kind": "class", "class_id": 1, "class_name": "one",
            "payload": "{}", "annotator": "ann", "source": "human", "ontology": ontology[0],
            "ontology_version": ontology[1], "status": "submitted", "target_id": None,
            "comment": None, "source_uri": None, "run_id": "r", "created_at": NOW,
            "agreement": None}  # fmt: skip


def review(asset_id, status, minute):
    target = f"e-{asset_id}-1"  # its v1 annotation; a review carries the asset's id too
    return {**annotation(asset_id), "event_id": f"review-{target}", "event": "review",
            "kind": status, "status": status, "target_id": target,
            "created_at": NOW + dt.timedelta(minutes=minute)}  # fmt: skip


def lake_with_a_round(tmp_path):
    """8 assets; round 1 of experiment `al` picked 5: two answered, one under v2 only,
    one answered and rejected, one not at all."""
    lk = Lake(str(tmp_path / "lake"))
    assets = rows(ASSETS, 8)
    ids = assets["asset_id"].to_pylist()
    session = lk.session("test", {})
    session.commit(ASSETS, assets)
    picked = rows(BATCHES, 5, experiment="al", round=1)
    picked = picked.set_column(picked.schema.get_field_index("asset_id"), "asset_id",
                               pa.array(ids[:5]))  # fmt: skip
    session.commit(BATCHES, picked)
    events = [annotation(ids[0]), annotation(ids[1]), annotation(ids[2], ("digits", 2)),
              annotation(ids[4]), review(ids[4], "rejected", 1),
              review(ids[1], "approved", 2)]  # fmt: skip
    session.commit(LABEL_EVENTS, pa.Table.from_pylist(events, LABEL_EVENTS.schema))
    return lk, ids


def pool(lk, repick):
    session = lk.session("test", {})
    return build_pool(session, lk, Pins.now(session), experiment="al", ontology=("digits", 1),
                      split=None, repick=repick)  # fmt: skip


def test_picks_stay_out_of_the_pool_until_a_round_is_closed(tmp_path):
    lk, ids = lake_with_a_round(tmp_path)
    closed = pool(lk, repick=False)
    assert closed.ids == sorted(ids[5:])
    assert closed.picked == set(ids[:5])
    assert closed.left_out["picked before"] == 5


def test_repick_returns_the_unanswered_picks_and_keeps_the_answered_out(tmp_path):
    lk, ids = lake_with_a_round(tmp_path)
    reopened = pool(lk, repick=True)
    # ids[0] and ids[1] were answered under digits v1 (one awaits review, one approved but
    # `labels` is not rebuilt here); ids[2] only under v2, ids[3] not at all, ids[4]'s
    # answer was rejected: those three are back in the pool
    assert reopened.ids == sorted(ids[2:])
    assert reopened.picked == {ids[0], ids[1]}
    assert set(reopened.covered) == {ids[0], ids[1]}
