"""Review: decisions on annotation events, and the `labels` table rebuilt from the ledger.

An annotation event starts `submitted`. Decisions are `review` events appended to the
ledger (never an update), each moving its target along:

    submitted --approve--> approved        submitted --reject--> rejected
    rejected --fix--> fixed --resubmit--> submitted
    approved --reopen--> submitted  (a suspected error, e.g. from `label_issues`)

`labels` holds, for each asset, the annotation objects whose latest state is `approved`
(of several approved image classes, the one approved last); every review run rebuilds it
from the ledger in one commit.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections import Counter
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from smartray.annotate.ledger import events
from smartray.errors import ConfigError
from smartray.tables.catalog import LABEL_EVENTS, LABEL_ISSUES, LABELS
from smartray.tables.filters import filter_table
from smartray.tables.lake import Lake
from smartray.tables.session import LakeSession

TRANSITIONS: dict[str, tuple[frozenset[str], str]] = {
    "approve": (frozenset({"submitted"}), "approved"),
    "reject": (frozenset({"submitted"}), "rejected"),
    "fix": (frozenset({"rejected"}), "fixed"),
    "resubmit": (frozenset({"fixed"}), "submitted"),
    "reopen": (frozenset({"approved"}), "submitted"),
}


def annotation_states(lake: Lake) -> pa.Table:
    """Every annotation event with its current `state` and who last decided on it.

    Columns: the annotation's own, plus `state`, `decided_by`, `decided_at`, `reviews`.
    """
    ledger = events(lake)
    anns = ledger.filter(pc.equal(ledger["event"], "annotation"))
    reviews = ledger.filter(pc.equal(ledger["event"], "review")).sort_by("created_at")
    last: dict[str, dict[str, Any]] = {}
    count: Counter[str] = Counter()
    for r in reviews.select(["target_id", "status", "annotator", "created_at"]).to_pylist():
        last[r["target_id"]] = r
        count[r["target_id"]] += 1
    ids = anns["event_id"].to_pylist()
    state = [
        last[i]["status"] if i in last else s
        for i, s in zip(ids, anns["status"].to_pylist(), strict=True)
    ]
    return (
        anns.append_column("state", pa.array(state, pa.string()))
        .append_column(
            "decided_by", pa.array([last.get(i, {}).get("annotator") for i in ids], pa.string())
        )
        .append_column(
            "decided_at",
            pa.array(
                [last.get(i, {}).get("created_at") for i in ids], pa.timestamp("us", tz="UTC")
            ),
        )
        .append_column("reviews", pa.array([count[i] for i in ids], pa.int32()))
    )


@dataclass
class ReviewSummary:
    """What a review run did."""

    run_id: str
    decision: str
    decided: int
    skipped: Counter[str]
    labels: int

    def line(self) -> str:
        """The job's summary line."""
        why = ", ".join(f"{n} {s}" for s, n in sorted(self.skipped.items()))
        return (
            f"review {self.run_id}: {self.decision} {self.decided} annotation(s)"
            + (f"; left alone (state): {why}" if why else "")
            + f"; labels now {self.labels} object(s)"
        )


def review(
    decision: str,
    *,
    reviewer: str,
    lake: str | None = None,
    ids: list[str] | None = None,
    where: str | None = None,
    comment: str | None = None,
) -> ReviewSummary:
    """Records `decision` on annotation events chosen by id or by a filter.

    A filter (SQL over the annotation events and their `state`) picks only those in a
    state the decision applies to; an id in another state is an error.

    Raises:
        ConfigError: an unknown decision, no or both selections, an unknown event id, an
            id in a state the decision does not apply to, or a bad filter.
    """
    if decision not in TRANSITIONS:
        raise ConfigError(f"unknown decision {decision!r}; choose one of {list(TRANSITIONS)}")
    if not reviewer.strip():
        raise ConfigError("--reviewer must name who decides")
    if bool(ids) == bool(where):
        raise ConfigError("choose annotations by --ids or by --where, not both or neither")
    lk = Lake(lake)
    states = annotation_states(lk)
    allowed, new_state = TRANSITIONS[decision]
    skipped: Counter[str] = Counter()
    if ids:
        known = {r["event_id"]: r for r in states.to_pylist()}
        unknown = [i for i in ids if i not in known]
        if unknown:
            raise ConfigError(f"unknown annotation event id(s): {', '.join(unknown[:5])}")
        wrong = [
            f"{i[:12]} is {known[i]['state']}" for i in ids if known[i]["state"] not in allowed
        ]
        if wrong:
            raise ConfigError(
                f"cannot {decision}: {'; '.join(wrong[:5])} (needs {' or '.join(sorted(allowed))})"
            )
        chosen = [known[i] for i in dict.fromkeys(ids)]
    else:
        picked = filter_table(states, where).to_pylist()
        chosen = [r for r in picked if r["state"] in allowed]
        skipped = Counter(r["state"] for r in picked if r["state"] not in allowed)
    session = lk.session(
        "review",
        {
            "decision": decision,
            "reviewer": reviewer,
            "ids": len(ids or []),
            "where": where,
            "comment": comment,
        },
    )
    now = dt.datetime.now(dt.UTC)
    rows = []
    for r in chosen:
        payload = json.dumps(
            {"decision": decision, "target": r["event_id"], "seq": r["reviews"]},
            sort_keys=True,
            separators=(",", ":"),
        )
        key = hashlib.sha256(f"review\x00{reviewer}\x00{payload}".encode()).hexdigest()
        rows.append(
            {
                "event_id": key,
                "asset_id": r["asset_id"],
                "event": "review",
                "kind": decision,
                "class_id": r["class_id"],
                "class_name": r["class_name"],
                "payload": payload,
                "annotator": reviewer,
                "source": "human",
                "ontology": r["ontology"],
                "ontology_version": r["ontology_version"],
                "status": new_state,
                "target_id": r["event_id"],
                "comment": comment,
                "source_uri": None,
                "run_id": session.run_id,
                "created_at": now,
            }
        )
    session.commit(LABEL_EVENTS, pa.Table.from_pylist(rows, LABEL_EVENTS.schema))
    labels = rebuild_labels(lk, session)
    session.counts.update({"decided": len(rows), "labels": labels})
    session.record()
    return ReviewSummary(session.run_id, decision, len(rows), skipped, labels)


def _one_class_per_asset(approved: pa.Table) -> pa.Table:
    """Keeps, of several approved image classes of one asset, the last one approved.

    Boxes, polygons and tags are many per image; an image has one class per ontology
    version (the same image may carry a class of another ontology, or of another
    version of this one).
    """
    rows = approved.to_pylist()
    latest: dict[tuple[str, str, int], dict[str, Any]] = {}

    def key(r: dict[str, Any]) -> tuple[str, str, int]:
        return r["asset_id"], r["ontology"], r["ontology_version"]

    for r in rows:
        if r["kind"] != "class":
            continue
        best = latest.get(key(r))
        if best is None or (r["decided_at"], r["event_id"]) > (
            best["decided_at"],
            best["event_id"],
        ):
            latest[key(r)] = r
    keep = [r["kind"] != "class" or latest[key(r)] is r for r in rows]
    return approved.filter(pa.array(keep, pa.bool_()))


def rebuild_labels(lake: Lake, session: LakeSession) -> int:
    """Rewrites `labels` from the ledger's approved annotations, as the session's run.

    Returns:
        The row count of `labels`.
    """
    states = annotation_states(lake)
    approved = _one_class_per_asset(states.filter(pc.equal(states["state"], "approved")))
    table = pa.table(
        {
            "asset_id": approved["asset_id"],
            "label_id": approved["event_id"],
            "kind": approved["kind"],
            "class_id": approved["class_id"],
            "class_name": approved["class_name"],
            "payload": approved["payload"],
            "annotator": approved["annotator"],
            "source": approved["source"],
            "ontology": approved["ontology"],
            "ontology_version": approved["ontology_version"],
            "approved_by": approved["decided_by"],
            "approved_at": approved["decided_at"],
            "agreement": approved["agreement"],
            "run_id": pa.array([session.run_id] * approved.num_rows, pa.string()),
        }
    )
    session.commit(LABELS, table, mode="replace")
    rows: int = table.num_rows
    return rows


def issue_queue(lake: Lake, run_id: str | None = None, top: int | None = None) -> pa.Table:
    """The label issues of a `find-label-issues` run (default: the latest), by rank.

    The first `top` of them, if given: the queue `review --from-label-issues` and
    `export --from-label-issues` act on.

    Raises:
        ConfigError: no find-label-issues run is recorded, or not that one.
    """
    if not lake.exists(LABEL_ISSUES.name):
        raise ConfigError(
            "--from-label-issues: no label issues yet (run `smartray find-label-issues`)"
        )
    rows = lake.table(LABEL_ISSUES.name, columns=["run_id", "asset_id", "label_id", "rank",
                                                  "found_at"])  # fmt: skip
    if run_id is None:
        latest = rows.sort_by([("found_at", "descending"), ("run_id", "descending")])
        run_id = latest["run_id"][0].as_py() if latest.num_rows else None
    mine = rows.filter(pc.equal(rows["run_id"], run_id)) if run_id else rows.slice(0, 0)
    if not mine.num_rows:
        raise ConfigError(f"--from-label-issues: run {run_id!r} found no label issues")
    mine = mine.sort_by("rank")
    return mine.slice(0, top) if top is not None else mine
