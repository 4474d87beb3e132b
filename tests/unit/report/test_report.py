"""`smartray report` on small lakes written without Ray: real digit thumbnails, made-up
rounds, models, evaluations and label issues (`smartray.testing.experiments`)."""

import base64
import re
from html.parser import HTMLParser

import numpy as np
import pytest

from smartray.errors import ConfigError
from smartray.report import build_page, learning_curves, write_report
from smartray.report.job import ReportJob
from smartray.report.job import main as report_main
from smartray.report.page import COLD_START
from smartray.report.sections import COLUMNS
from smartray.sanitize.cv import cv2
from smartray.tables import Lake
from smartray.testing.experiments import experiment_lake

EXPERIMENTS = (("exp-margin", "margin"), ("exp-random", "random"))
ODD = "<i>night & 'day'</i>"  # an experiment name that must be escaped


class Cards(HTMLParser):
    """Each `figure.card` of the page: the grid it is in, its asset, rank, image and text."""

    def __init__(self):
        super().__init__()
        self.cards, self.grid, self.card, self.srcs = [], None, None, []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "div" and "grid" in (a.get("class") or ""):
            self.grid = a["class"].split()[-1]
        elif tag == "figure":
            self.card = {"grid": self.grid, "asset": a["data-asset"], "rank": int(a["data-rank"]),
                         "src": None, "text": ""}  # fmt: skip
            self.cards.append(self.card)
        elif tag == "img":
            self.srcs.append(a["src"])
            if self.card is not None:
                self.card["src"] = a["src"]

    def handle_endtag(self, tag):
        if tag == "figure":
            self.card["text"] = " ".join(self.card["text"].split())
            self.card = None

    def handle_data(self, data):
        if self.card is not None:
            self.card["text"] += f" {data} "


def cards(page):
    parser = Cards()
    parser.feed(page)
    return parser


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    root = tmp_path_factory.mktemp("report")
    lake = experiment_lake(str(root / "lake"), EXPERIMENTS)
    out = root / "out" / "report.html"  # its folder is made
    summary = write_report([e for e, _ in EXPERIMENTS], str(out), lake=lake.root)
    return lake, out.read_text(), summary


@pytest.fixture(scope="module")
def bare(tmp_path_factory):
    """A lake that only ever ingested and selected (no train, evaluate, issues or loop)."""
    root = tmp_path_factory.mktemp("bare")
    return experiment_lake(str(root / "lake"), [(ODD, "kcenter")], rounds=1, tables=())


def test_the_page_holds_no_url_and_loads_nothing(made):
    _, page, summary = made
    for needle in ("http://", "https://", "//cdn", "<link", "<script", "@import"):
        assert needle not in page
    assert not re.findall(r"(?:url\(|href=)(?![\"']?#)", page)  # only in-page references
    assert all(src.startswith("data:image/jpeg;base64,") for src in cards(page).srcs)
    assert "default-src 'none'; img-src data:" in page  # the page's CSP
    assert summary.bytes == len(page.encode())
    assert "report exp-margin, exp-random ->" in summary.line()


def test_every_image_is_the_thumbnail_of_the_asset_on_its_card(made):
    lake, page, _ = made
    found = cards(page).cards
    assert len(found) == 2 * 6 + 5  # two batches of 6, five label issues
    for card in found:
        image = base64.b64decode(card["src"].split(",", 1)[1])
        assert image == lake.thumbnails[card["asset"]]
        pixels = cv2.imdecode(np.frombuffer(image, np.uint8), cv2.IMREAD_UNCHANGED)
        assert pixels is not None
        assert pixels.shape[:2] == (64, 64)


def test_batch_cards_are_in_rank_order_with_their_scores(made):
    lake, page, summary = made
    batch = [c for c in cards(page).cards if c["grid"] == "batch-grid"]
    assert summary.batch_assets == len(batch) == 12
    for experiment, _ in EXPERIMENTS:
        mine = batch[:6] if experiment == "exp-margin" else batch[6:]
        assert [c["asset"] for c in mine] == lake.batch[experiment]  # committed shuffled
        assert [c["rank"] for c in mine] == list(range(6))
        scores = [float(re.search(r"score (\S+)", c["text"]).group(1)) for c in mine]
        assert scores == pytest.approx(lake.scores[experiment], abs=1e-4)
        assert all(COLD_START not in c["text"] for c in mine)
    assert "round 3: 6 asset(s) picked by margin" in page


def test_the_learning_curve_has_one_line_per_experiment(made):
    lake, page, summary = made
    rounds = Lake(lake.root).table("al_rounds", columns=COLUMNS["al_rounds"])
    curves = learning_curves(rounds, ["exp-random", "exp-margin"])
    assert [c.label for c in curves] == ["exp-random (random)", "exp-margin (margin)"]
    for curve in curves:  # round 1 (cold start) has no point; round 3 only a val accuracy
        labelled, accuracy = zip(*lake.curves[curve.experiment], strict=True)
        assert curve.labelled == list(labelled)
        assert curve.accuracy == pytest.approx(accuracy)
        assert curve.rounds == [2, 3]
        assert curve.metric == ["test", "val"]
        assert curve.total_rounds == 3
    assert summary.points == 4
    svg = page.split('id="plot-learning-curve">', 1)[1].split("</svg>", 1)[0]
    assert "exp-margin (margin)" in svg
    assert "exp-random (random)" in svg


def test_the_worst_slices_of_the_latest_evaluation_of_the_latest_model(made):
    lake, _, _ = made
    page = build_page(["exp-margin"], lake=lake.root)
    ev = page.evaluations["exp-margin"]
    assert ev.model_id == lake.model["exp-margin"]
    runs = Lake(lake.root).table("evaluations", columns=["run_id", "evaluated_at"]).to_pylist()
    assert ev.run_id == max(runs, key=lambda r: r["evaluated_at"])["run_id"]
    assert ev.overall.slice_by == "all"
    assert len(ev.worst) == 8
    assert ev.slices == 10
    accuracies = [s.accuracy for s in ev.worst]
    assert accuracies == sorted(accuracies)
    assert all(s.slice_by != "all" for s in ev.worst)
    assert any(s.flagged for s in ev.worst)


def test_label_issues_of_the_latest_run_by_rank(made):
    lake, page, summary = made
    found = [c for c in cards(page).cards if c["grid"] == "issue-grid"]
    assert [c["asset"] for c in found] == lake.issues
    assert "given zero" in found[0]["text"]
    assert "suggested three" in found[0]["text"]
    assert summary.issues == 5


def test_tables_never_run_give_not_run_yet_sections_and_text_is_escaped(bare, tmp_path):
    out = tmp_path / "bare.html"
    summary = write_report([ODD], str(out), lake=bare.root)
    page = out.read_text()
    for section in ("curve", "issues", "slices"):
        body = page.split(f'<section id="{section}">', 1)[1].split("</section>", 1)[0]
        assert "not run yet" in body, section
    assert "plot-learning-curve" not in page
    assert 'id="plot-quality"' in page  # assets are there
    assert ODD not in page
    assert "&lt;i&gt;night &amp; &#x27;day&#x27;&lt;/i&gt;" in page
    batch = [c for c in cards(page).cards if c["grid"] == "batch-grid"]
    assert len(batch) == 6
    assert all(COLD_START in c["text"] for c in batch)
    assert (summary.issues, summary.slices, summary.points) == (0, 0, 0)
    assert summary.versions["evaluations"] is None


def test_an_unknown_experiment_is_a_config_error_and_nothing_is_written(made, tmp_path):
    lake, _, _ = made
    out = tmp_path / "nope.html"
    with pytest.raises(ConfigError, match=r"exp-nope.*experiments: exp-margin, exp-random"):
        write_report(["exp-margin", "exp-nope"], str(out), lake=lake.root)
    with pytest.raises(SystemExit) as e:
        report_main(["--experiment", "exp-nope", "--lake", lake.root, "--out", str(out)])
    assert e.value.code == 2
    assert not out.exists()
    assert list(tmp_path.iterdir()) == []


def test_an_empty_lake_or_a_bad_out_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="experiments: none yet"):
        write_report(["exp"], str(tmp_path / "r.html"), lake=str(tmp_path / "lake"))
    with pytest.raises(ConfigError, match="name the HTML file"):
        write_report(["exp"], str(tmp_path), lake=str(tmp_path / "lake"))
    with pytest.raises(ConfigError, match="local file or s3://"):
        write_report(["exp"], "gs://bucket/r.html", lake=str(tmp_path / "lake"))
    assert list(tmp_path.iterdir()) == []


def test_the_job_takes_experiments_comma_separated_or_repeated(made, tmp_path, capsys):
    lake, _, _ = made
    cfg = ReportJob(experiment=["a,b", "c"])
    assert cfg.experiment == ["a", "b", "c"]
    assert ReportJob(experiment="a, b").experiment == ["a", "b"]  # env or YAML
    out = tmp_path / "r.html"
    report_main(["--experiment", "exp-margin,exp-random", "--lake", lake.root, "--out", str(out)])
    assert "report exp-margin, exp-random ->" in capsys.readouterr().out
    assert out.read_text().count('class="grid batch-grid"') == 2
