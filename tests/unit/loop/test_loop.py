"""`smartray loop`'s settings and checks that run before anything is written."""

from collections import Counter

import pytest
import yaml
from pydantic import ValidationError

from smartray.annotate import register
from smartray.annotate.ledger import CheckedFile
from smartray.annotate.model import Annotation, Refusal
from smartray.annotate.ontology import parse_ontology
from smartray.errors import ConfigError
from smartray.loop import LoopConfig
from smartray.loop.pipeline import fits_ontology, round_line
from smartray.selection.pipeline import Recorded
from smartray.tables import Lake

BASE = {"experiment": "al", "split": "main"}


@pytest.mark.parametrize(
    ("change", "why"),
    [
        ({"rounds": 3}, "more than one round needs --oracle"),
        ({"labels": ("a.json",)}, "--labels needs --format"),
        ({"oracle": "truth/"}, "--oracle needs --oracle-format"),
        ({"oracle": "t/", "oracle_format": "folders", "labels": ("a",), "format": "coco"},
         "not both"),
        ({"strategy": "smallest"}, "unknown strategy 'smallest'"),
        ({"cold_start": "margin"}, "--cold-start 'margin': choose random or kcenter"),
        ({"approve": "some"}, "'reviewed' or 'all'"),
    ],
)  # fmt: skip
def test_settings_that_cannot_run_are_refused_with_the_reason(change, why):
    with pytest.raises(ValidationError, match=why):
        LoopConfig(**BASE, **change)


def test_bald_scores_with_mc_passes_unless_told_otherwise():
    assert LoopConfig(**BASE).passes() == 0
    assert LoopConfig(**BASE, strategy="bald").passes() == 10
    assert LoopConfig(**BASE, strategy="weighted", weights={"bald": 1}).passes() == 10
    assert LoopConfig(**BASE, strategy="bald", mc_dropout=4).passes() == 4


def ontology(version, nine="nine"):
    text = f"name: digits\nversion: {version}\nkinds: [class]\nclasses:\n"
    text += "".join(f"  - {{id: {i}, name: {n}}}\n" for i, n in enumerate(["zero", nine]))
    return parse_ontology(yaml.safe_load(text))


def checked(onto, good, unknown):
    anns = [(Annotation.make(f"{i:064x}", "class", "zero"), f"e{i}") for i in range(good)]
    refusals = [
        Refusal(f"r{i}", "unknown_class", "not in it") for i in range(sum(unknown.values()))
    ]
    return CheckedFile("answers/", "folders", "/answers", onto, anns, refusals,
                       unknown_classes=Counter(unknown))  # fmt: skip


def test_a_label_file_of_another_ontology_version_is_refused(tmp_path):
    lake = str(tmp_path / "lake")
    v1, v2 = ontology(1), ontology(2, nine="niner")
    register(v1, lake=lake)
    register(v2, lake=lake)
    lk = Lake(lake)
    with pytest.raises(ConfigError, match=r"\['niner'\] are not in ontology 'digits' v1.* in v2"):
        fits_ontology(lk, checked(v1, 5, {"niner": 2}))
    with pytest.raises(ConfigError, match="nothing in it fits ontology 'digits' v1"):
        fits_ontology(lk, checked(v1, 0, {"eleven": 3}))
    fits_ontology(lk, checked(v1, 5, {"eleven": 1}))  # a stray class: quarantined, not refused
    fits_ontology(lk, checked(v2, 5, {}))


def test_a_round_recorded_before_label_events_were_pinned_reads_them_as_empty():
    row = {"settings": '{"experiment": "al", "budget": 3, "strategy": "margin", '
           '"pool_ontology": ["digits", 1], "split": "main"}', "seed": 7, "round": 2,
           "model_id": "m", "assets_version": 4, "labels_version": 3}  # fmt: skip
    recorded = Recorded.of(row, ["a", "b", "c"])
    assert recorded.config.seed == 7
    assert recorded.config.repick is False
    assert recorded.pins.of("label_events") is None
    assert recorded.pins.of("assets") == 4
    assert (recorded.ontology, recorded.round, recorded.model_id) == (("digits", 1), 2, "m")


def test_the_round_line_says_labels_accuracy_and_what_was_picked():
    row = {"round": 2, "asked": 12, "answered": 8, "labelled": 8, "model_id": "m1",
           "val_accuracy": 0.5, "val_n": 48, "test_accuracy": None, "test_n": None,
           "selected_ids": ["a"] * 12, "pool_size": 140, "strategy": "margin"}  # fmt: skip
    assert round_line(row) == (
        "round 2: 8 of the 12 asked answered; 8 train labels, model m1: val accuracy 50.0 % "
        "(n 48); picked 12 of 140 by margin"
    )
    cold = {**row, "round": 1, "asked": 0, "labelled": 0, "model_id": None,
            "strategy": "kcenter"}  # fmt: skip
    assert round_line(cold) == (
        "round 1: 0 train labels, no model yet (cold start); picked 12 of 140 by kcenter"
    )


def test_a_round_that_would_train_without_labelled_val_is_refused_before_writing(tmp_path):
    from smartray.loop.pipeline import _measurable

    lk = Lake(str(tmp_path / "lake"))  # no labels yet
    onto = ontology(1)
    config = LoopConfig(**BASE)
    train, val = {f"{i:064x}" for i in range(3)}, {f"{i:064x}" for i in range(3, 5)}
    sides = {"train": train, "val": val}
    answers_train = checked(onto, 3, {})  # the assets of 0..2: train side
    with pytest.raises(ConfigError, match="its val side has no approved label"):
        _measurable(lk, config, onto, sides, [answers_train])
    _measurable(lk, config, onto, sides, [])  # a cold start trains nothing: fine
    both = checked(onto, 5, {})  # train and val answered together: fine
    _measurable(lk, config, onto, sides, [both])
