"""The report as one HTML page: every text escaped, images and plots inline, no URL.

The page's Content-Security-Policy allows only inline styles and `data:` images, so a
browser that opens it fetches nothing, whatever a later change puts in it.
"""

from __future__ import annotations

import base64
import datetime as dt
from dataclasses import dataclass
from html import escape

from smartray.report.sections import Batch, Card, Curve, Evaluation, Issue, SliceRow

CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"
COLD_START = "no model (cold start)"

_STYLE = """
body{font-family:system-ui,sans-serif;margin:1.5rem auto;max-width:1200px;color:#1c2530;
padding:0 1rem}
h1{margin-bottom:.2rem}h2{border-bottom:1px solid #d5dbe1;padding-bottom:.2rem;margin-top:2rem}
.meta{color:#56616d;font-size:.9rem}.meta td{padding:0 .8rem 0 0}
.note{color:#56616d;font-style:italic}
.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(150px,1fr));gap:.6rem}
.card{border:1px solid #d5dbe1;border-radius:6px;padding:.4rem;margin:0;font-size:.8rem}
.card img{width:100%;height:128px;object-fit:contain;background:#f2f4f6;
image-rendering:pixelated}
.card figcaption div{white-space:nowrap;overflow:hidden;text-overflow:ellipsis}
.missing{height:128px;display:flex;align-items:center;justify-content:center;
background:#f2f4f6;color:#56616d}
table.rows{border-collapse:collapse;font-size:.85rem}
table.rows th,table.rows td{border-bottom:1px solid #e3e7eb;padding:.2rem .6rem;
text-align:left}
tr.flagged td{background:#fdecea}
.plot svg{max-width:100%;height:auto}
"""


@dataclass(frozen=True)
class Page:
    """Everything the page shows; a section given as text says why it has nothing."""

    experiments: list[str]
    lake: str
    made_at: dt.datetime
    versions: dict[str, int | None]  # table -> version read (None: not there)
    batches: dict[str, Batch | str]
    issues: list[Issue] | str
    issues_run: str | None
    quality_svg: str | None
    quality_note: str
    evaluations: dict[str, Evaluation | str]
    curves: list[Curve] | str
    curve_svg: str | None


def data_uri(image: bytes) -> str:
    """`image` (JPEG or PNG bytes) as a `data:` URI."""
    mime = "image/png" if image.startswith(b"\x89PNG") else "image/jpeg"
    return f"data:{mime};base64,{base64.b64encode(image).decode('ascii')}"


def _num(value: float | None, fmt: str = ".3f") -> str:
    return "—" if value is None else format(value, fmt)


def _thumb(asset_id: str, image: bytes | None) -> str:
    if image is None:
        return '<div class="missing">no thumbnail</div>'
    return f'<img src="{data_uri(image)}" alt="asset {escape(asset_id[:12])}">'


def _note(text: str) -> str:
    return f'<p class="note">{escape(text)}</p>'


def _figure(asset_id: str, rank: int, thumbnail: bytes | None, lines: list[str]) -> str:
    """A card: the asset's thumbnail and caption lines (already HTML)."""
    caption = "".join(f"<div>{line}</div>" for line in lines)
    return (
        f'<figure class="card" data-asset="{escape(asset_id)}" data-rank="{rank}">'
        f"{_thumb(asset_id, thumbnail)}<figcaption>{caption}</figcaption></figure>"
    )


def _card(card: Card) -> str:
    guess = (
        COLD_START
        if card.predicted_class is None
        else f"{card.predicted_class} ({_num(card.confidence, '.2f')})"
    )
    lines = [
        f"<b>#{card.rank}</b> score <span class=score>{_num(card.score, '.4g')}</span>",
        escape(guess),
        f'<code title="{escape(card.asset_id)}">{escape(card.asset_id[:12])}</code>',
    ]
    return _figure(card.asset_id, card.rank, card.thumbnail, lines)


def _issue(i: Issue) -> str:
    lines = [
        f"<b>#{i.rank}</b> given <b>{escape(i.given_class)}</b>",
        f"suggested <b>{escape(i.suggested_class)}</b>",
        f"self-confidence {_num(i.self_confidence)}",
    ]
    return _figure(i.asset_id, i.rank, i.thumbnail, lines)


def _batch(experiment: str, batch: Batch | str) -> str:
    head = f"<h3>{escape(experiment)}</h3>"
    if isinstance(batch, str):
        return head + _note(batch)
    by = f"model <code>{escape(batch.model_id)}</code>" if batch.model_id else COLD_START
    about = (
        f"round {batch.round}: {len(batch.cards)} asset(s) picked by {escape(batch.strategy)} "
        f"with {by} from a pool of {batch.pool_size}, {batch.selected_at:%Y-%m-%d %H:%M} UTC"
    )
    cards = "".join(_card(c) for c in batch.cards)
    return (
        f'{head}<p>{about}</p><div class="grid batch-grid" '
        f'data-experiment="{escape(experiment)}">{cards}</div>'
    )


def _issues(issues: list[Issue] | str, run: str | None) -> str:
    if isinstance(issues, str):
        return _note(issues)
    cards = "".join(_issue(i) for i in issues)
    about = f"the first {len(issues)} of run <code>{escape(run or '')}</code>, most likely first"
    return f'<p>{about}</p><div class="grid issue-grid">{cards}</div>'


def _slice_row(s: SliceRow) -> str:
    cells = (s.slice_by, s.slice, str(s.n), _num(s.accuracy),
             f"{_num(s.ci_low)} to {_num(s.ci_high)}", _num(s.p_adjusted, ".3g"),
             "yes" if s.flagged else "")  # fmt: skip
    row = "".join(f"<td>{escape(c)}</td>" for c in cells)
    return f'<tr class="{"flagged" if s.flagged else ""}">{row}</tr>'


def _evaluation(experiment: str, ev: Evaluation | str) -> str:
    head = f"<h3>{escape(experiment)}</h3>"
    if isinstance(ev, str):
        return head + _note(ev)
    about = (
        f"model <code>{escape(ev.model_id)}</code> on split {escape(ev.split_name)}, side "
        f"{escape(ev.side)}: run <code>{escape(ev.run_id)}</code>, "
        f"{ev.evaluated_at:%Y-%m-%d %H:%M} UTC; the {len(ev.worst)} worst of {ev.slices} slice(s)"
    )
    header = "".join(
        f"<th>{h}</th>"
        for h in ("slice by", "slice", "n", "accuracy", "95 % interval", "p adjusted", "flagged")
    )
    rows = [ev.overall] if ev.overall else []
    body = "".join(_slice_row(s) for s in [*rows, *ev.worst])
    return (
        f'{head}<p>{about}</p><table class="rows slices" data-experiment="{escape(experiment)}">'
        f"<thead><tr>{header}</tr></thead><tbody>{body}</tbody></table>"
    )


def _curves(curves: list[Curve] | str, svg: str | None) -> str:
    if isinstance(curves, str):
        return _note(curves)
    plot = (
        f'<div class="plot" id="plot-learning-curve">{svg}</div>'
        if svg
        else _note("no round has a trained model yet (cold start only)")
    )
    rows = "".join(
        f"<tr><td>{escape(c.label)}</td><td>{c.total_rounds}</td><td>{len(c.labelled)}</td>"
        f"<td>{c.labelled[-1] if c.labelled else '—'}</td>"
        f"<td>{_num(c.accuracy[-1]) if c.accuracy else '—'}"
        f"{' (' + c.metric[-1] + ')' if c.metric else ''}</td></tr>"
        for c in curves
    )
    table = (
        '<table class="rows curves"><thead><tr><th>experiment (strategy)</th><th>rounds</th>'
        "<th>with a model</th><th>labelled</th><th>last accuracy</th></tr></thead>"
        f"<tbody>{rows}</tbody></table>"
    )
    return plot + table


def _header(page: Page) -> str:
    read = ", ".join(f"{escape(t)} v{v}" for t, v in sorted(page.versions.items()) if v is not None)
    absent = ", ".join(escape(t) for t, v in sorted(page.versions.items()) if v is None)
    rows = [
        ("lake", f"<code>{escape(page.lake)}</code>"),
        ("made", f"{page.made_at:%Y-%m-%d %H:%M:%S} UTC"),
        ("tables read", read or "none"),
    ]
    if absent:
        rows.append(("not there yet", absent))
    cells = "".join(f"<tr><td>{k}</td><td>{v}</td></tr>" for k, v in rows)
    return f"<h1>{escape(', '.join(page.experiments))}</h1><table class=meta>{cells}</table>"


def render(page: Page) -> str:
    """The whole page as one HTML document."""
    title = escape(f"smartray report: {', '.join(page.experiments)}")
    quality = (
        f'<div class="plot" id="plot-quality">{page.quality_svg}</div>' if page.quality_svg else ""
    )
    sections = [
        ("curve", "Learning curve", _curves(page.curves, page.curve_svg)),
        ("batch", "Latest batch",
         "".join(_batch(e, b) for e, b in page.batches.items())),
        ("issues", "Label issues awaiting review", _issues(page.issues, page.issues_run)),
        ("quality", "Image quality",
         _note(page.quality_note) + quality),
        ("slices", "Worst slices of the last evaluation",
         "".join(_evaluation(e, v) for e, v in page.evaluations.items())),
    ]  # fmt: skip
    body = "".join(f'<section id="{i}"><h2>{h}</h2>{s}</section>' for i, h, s in sections)
    return (
        "<!DOCTYPE html>\n<html lang=en><head><meta charset=utf-8>"
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
        '<meta name=viewport content="width=device-width,initial-scale=1">'
        f"<title>{title}</title><style>{_STYLE}</style></head>"
        f"<body>{_header(page)}{body}</body></html>\n"
    )
