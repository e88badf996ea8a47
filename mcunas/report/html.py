"""The self-contained HTML page: inline CSS, figures as base64 SVG images, a small sort script.

Nothing on the page refers to another file or URL, so the report can be mailed or opened
offline. Element ids the tests (and users' scripts) rely on: ``summary``,
``fig-pareto-<board>-<metric>``, ``fig-progress``, ``table-pareto``, ``table-validation``,
``table-trials``, ``config-<i>``; of a space optimization (:mod:`mcunas.report.space`)
``space-<i>``, ``fig-space-<i>-<board>``, ``table-space-<i>-<board>``.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from html import escape
from typing import Any

from mcunas.report.load import RunData
from mcunas.report.tables import BoardSummary


@dataclass(frozen=True)
class Column:
    """One HTML table column: the row key, its header, how a raw value is shown."""

    key: str
    header: str
    show: Callable[[Any], str]


@dataclass(frozen=True)
class FigureRef:
    """A figure on the page: element id, caption, its SVG bytes."""

    element_id: str
    caption: str
    svg: bytes


def slug(text: str) -> str:
    """``text`` reduced to ``[A-Za-z0-9_-]`` for element ids and file names."""
    return re.sub(r"[^A-Za-z0-9_-]+", "-", text).strip("-") or "x"


def kilobytes(value: Any) -> str:
    """Bytes shown in KB of 1024 bytes, one decimal."""
    return "" if value is None else f"{value / 1024:,.1f}"


def milliseconds(value: Any) -> str:
    return "" if value is None else f"{value:,.2f}"


def percent_of_one(value: Any) -> str:
    """A 0..1 fraction shown in percent, one decimal."""
    return "" if value is None else f"{100 * value:.1f}"


def integer(value: Any) -> str:
    """An exact count (bytes) with thousands separators."""
    return "" if value is None else f"{value:,}"


def signed(value: Any) -> str:
    """A difference (error %, percentage points) with its sign, one decimal."""
    return "" if value is None else f"{value:+.1f}"


def count(value: Any) -> str:
    """A large count with an SI suffix: 950, 12.3 k, 4.56 M."""
    if value is None:
        return ""
    if abs(value) < 1e3:
        return f"{value:g}"
    if abs(value) < 1e6:
        return f"{value / 1e3:.1f} k"
    return f"{value / 1e6:.2f} M"


def text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


PARETO_TABLE = (
    Column("run", "run", text),
    Column("board", "board", text),
    Column("number", "trial", text),
    Column("block_string", "architecture", text),
    Column("macs", "MACs", count),
    Column("params", "params", count),
    Column("latency_ms", "latency (ms)", milliseconds),
    Column("latency_ms_low", "latency low (ms)", milliseconds),
    Column("latency_ms_high", "latency high (ms)", milliseconds),
    Column("sram_bytes", "SRAM (KB)", kilobytes),
    Column("flash_bytes", "flash (KB)", kilobytes),
    Column("accuracy_val", "val acc (%)", percent_of_one),
    Column("accuracy_test", "retrained test acc (%)", percent_of_one),
    Column("accuracy_float", "float acc (%)", percent_of_one),
    Column("accuracy_int8", "int8 acc (%)", percent_of_one),
    Column("int8_drop_pp", "int8 drop (pp)", signed),
)
VALIDATION_TABLE = (
    Column("run", "run", text),
    Column("board", "board", text),
    Column("number", "trial", text),
    Column("arena_bytes_measured", "arena measured, host (B)", integer),
    Column("arena_bytes_predicted", "arena predicted, host (B)", integer),
    Column("arena_error_pct", "arena error (%)", signed),
    Column("arena_bytes_predicted_target", "arena predicted, 32-bit target (B)", integer),
    Column("model_bytes", ".tflite size (B)", integer),
    Column("model_bytes_predicted", ".tflite predicted (B)", integer),
    Column("model_error_pct", "model error (%)", signed),
    Column("accuracy_float", "float acc (%)", percent_of_one),
    Column("accuracy_int8", "int8 acc (%)", percent_of_one),
    Column("top1_agreement", "top-1 agreement (%)", percent_of_one),
    Column("per_op_uri", "per-op view", text),
)
TRIALS_TABLE = (
    Column("run", "run", text),
    Column("board", "board", text),
    Column("number", "trial", text),
    Column("state", "state", text),
    Column("feasible", "feasible", text),
    Column("pareto", "Pareto", text),
    Column("block_string", "architecture", text),
    Column("latency_ms", "latency (ms)", milliseconds),
    Column("latency_ms_low", "latency low (ms)", milliseconds),
    Column("latency_ms_high", "latency high (ms)", milliseconds),
    Column("sram_bytes", "SRAM (KB)", kilobytes),
    Column("flash_bytes", "flash (KB)", kilobytes),
    Column("accuracy_val", "val acc (%)", percent_of_one),
    Column("violations", "violations", text),
)

STYLE = """
:root { --ink:#1d2430; --muted:#5f6b7a; --line:#e3e7ee; --bg:#f6f7f9; --accent:#2360c4; }
* { box-sizing: border-box; }
body { margin:0; background:var(--bg); color:var(--ink);
  font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif; }
main { max-width:1500px; margin:0 auto; padding:24px 28px 48px; }
h1 { font-size:26px; margin:0 0 4px; }
h2 { font-size:19px; margin:32px 0 12px; padding-bottom:6px; border-bottom:1px solid var(--line); }
h3 { font-size:16px; margin:18px 0 8px; }
.sub { color:var(--muted); margin:0 0 8px; font-size:14px; }
.cards { display:grid; grid-template-columns:repeat(auto-fill,minmax(330px,1fr)); gap:14px; }
.card { background:#fff; border:1px solid var(--line); border-radius:10px; padding:14px 16px; }
.card h3 { margin:0; font-size:16px; }
.card .run { color:var(--muted); font-size:13px; }
.card .big { font-size:32px; font-weight:650; margin:6px 0 2px; color:var(--accent); }
.card .big small { font-size:14px; font-weight:400; color:var(--muted); }
.card dl { display:grid; grid-template-columns:auto 1fr; gap:2px 12px; margin:8px 0 0; font-size:14px; }
.card dt { color:var(--muted); }
.card dd { margin:0; font-variant-numeric:tabular-nums; }
.grid { display:grid; grid-template-columns:repeat(auto-fill,minmax(400px,1fr)); gap:14px; }
figure { margin:0; background:#fff; border:1px solid var(--line); border-radius:10px; padding:8px; }
figure img { width:100%; height:auto; display:block; }
figcaption { color:var(--muted); font-size:13px; padding:4px 6px 0; }
.scroll { overflow-x:auto; background:#fff; border:1px solid var(--line); border-radius:10px; }
table { border-collapse:collapse; width:100%; font-size:13px; font-variant-numeric:tabular-nums; }
th, td { padding:6px 10px; border-bottom:1px solid var(--line); text-align:right; white-space:nowrap; }
th { background:#eef1f6; position:sticky; top:0; cursor:pointer; user-select:none; white-space:normal;
  vertical-align:bottom; min-width:64px; }
th[data-dir=asc]::after { content:" \\25B2"; } th[data-dir=desc]::after { content:" \\25BC"; }
td.t, th.t { text-align:left; }
td.arch { font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace; font-size:12px;
  white-space:normal; overflow-wrap:anywhere; min-width:300px; max-width:420px; }
.card .arch { font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace; font-size:12px; overflow-wrap:anywhere; }
tr:hover td { background:#f3f6fb; }
pre { background:#fff; border:1px solid var(--line); border-radius:10px; padding:12px 14px; overflow-x:auto;
  font-size:13px; }
details summary { cursor:pointer; color:var(--accent); margin:6px 0; }
.note { color:var(--muted); font-style:italic; }
"""

SORT_SCRIPT = """
document.querySelectorAll("table.sortable").forEach(function (table) {
  var heads = table.tHead.rows[0].cells;
  Array.prototype.forEach.call(heads, function (th, col) {
    th.addEventListener("click", function () {
      var asc = th.dataset.dir !== "asc";
      Array.prototype.forEach.call(heads, function (h) { delete h.dataset.dir; });
      th.dataset.dir = asc ? "asc" : "desc";
      var body = table.tBodies[0];
      var rows = Array.prototype.slice.call(body.rows);
      rows.sort(function (a, b) {
        var x = a.cells[col].dataset.v, y = b.cells[col].dataset.v;
        var nx = parseFloat(x), ny = parseFloat(y);
        var c = (isNaN(nx) || isNaN(ny)) ? x.localeCompare(y) : nx - ny;
        return asc ? c : -c;
      });
      rows.forEach(function (r) { body.appendChild(r); });
    });
  });
});
"""


def _head(title: str) -> list[str]:
    return [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{escape(title)}</title>",
        f"<style>{STYLE}</style></head><body><main>",
    ]


_FOOT = f"</main><script>{SORT_SCRIPT}</script></body></html>"


def render_sections_page(sections: Sequence[str]) -> str:
    """A page of ready sections only (space optimizations without search runs)."""
    return "\n".join([*_head("mcunas report"), "<h1>mcunas report</h1>", *sections, _FOOT]) + "\n"


def render_page(
    runs: Sequence[RunData],
    summaries: Sequence[BoardSummary],
    pareto_figures: dict[str, list[FigureRef]],
    progress: FigureRef,
    pareto_rows: Sequence[dict[str, Any]],
    validation_rows: Sequence[dict[str, Any]],
    trial_rows: Sequence[dict[str, Any]],
    extra_sections: Sequence[str] = (),
) -> str:
    """The whole HTML document as text; ``extra_sections`` (HTML, e.g. space optimizations)
    follow the summary."""
    run_of = {run.label: run for run in runs}
    parts = [
        *_head("mcunas report"),
        "<h1>mcunas Pareto report</h1>",
        '<p class="sub">' + " &middot; ".join(f"{escape(r.label)}: {escape(str(r.path))}" for r in runs) + "</p>",
        '<section id="summary"><h2>Best model that fits, per board</h2><div class="cards">',
        *(_summary_card(s, run_of[s.run]) for s in summaries),
        "</div></section>",
        *extra_sections,
        '<section id="pareto-fronts"><h2>Pareto fronts</h2>',
        '<p class="sub">Filled: Pareto front of accuracy against the metric among feasible candidates; '
        "faded: dominated; &times;: infeasible (at the bottom edge when not trained); dashed: the budget.</p>",
    ]
    for board, figures in pareto_figures.items():
        parts += [f"<h3>{escape(board)}</h3>", '<div class="grid">', *(figure_html(f) for f in figures), "</div>"]
    parts += [
        "</section>",
        '<section id="progress"><h2>Search progress</h2><div class="grid">',
        figure_html(progress),
        "</div></section>",
        '<section><h2>Pareto members</h2><p class="sub">Non-dominated feasible trials under each run\'s objectives '
        f"({escape(', '.join(sorted({o for r in runs for o in r.objectives})))}). Click a header to sort.</p>",
        table_html("table-pareto", PARETO_TABLE, pareto_rows),
        "</section>",
        '<section><h2>Exported models: measured vs predicted</h2>'
        '<p class="sub">Tensor arena measured in the TFLite Micro interpreter (host build) against the memory model for the same build; '
        "the 32-bit target prediction is what the board allocates. Error = (predicted &minus; measured) / measured.</p>",
        table_html("table-validation", VALIDATION_TABLE, _with_per_op_links(runs, validation_rows))
        if validation_rows
        else '<p class="note" id="table-validation">No exported models in these runs.</p>',
        "</section>",
        f"<section><h2>All trials</h2><details><summary>Show all {len(trial_rows)} trials</summary>",
        table_html("table-trials", TRIALS_TABLE, trial_rows),
        "</details></section>",
        "<section><h2>Configuration</h2>",
        *(
            f"<details><summary>{escape(run.label)}: config.yaml</summary>"
            f'<pre id="config-{i}">{escape(run.config_text)}</pre></details>'
            for i, run in enumerate(runs)
        ),
        "</section>",
        _FOOT,
    ]
    return "\n".join(parts) + "\n"


def _summary_card(summary: BoardSummary, run: RunData) -> str:
    share = summary.feasible_share
    rows = [
        ("trials", f"{summary.trials} ({summary.completed} completed)"),
        ("feasible", f"{summary.feasible} of {summary.completed}" + (f" ({100 * share:.0f}%)" if share is not None else "")),
        ("Pareto front", f"{summary.pareto} members, {summary.exported} exported"),
    ]
    best = summary.best
    if best is None:
        headline = '<div class="big">&ndash; <small>no feasible trained candidate</small></div>'
    else:
        headline = f'<div class="big">{100 * best.accuracy_val:.1f}% <small>val accuracy, trial {best.number}</small></div>'  # type: ignore[operator]
        rows = [
            ("latency", _with_limit(best.metric("latency_ms"), run.limit(summary.board, "latency_ms"), milliseconds, "ms",
                                    (best.metric("latency_ms_low"), best.metric("latency_ms_high")))),
            ("SRAM", _with_limit(best.metric("sram_bytes"), run.limit(summary.board, "sram_bytes"), kilobytes, "KB")),
            ("flash", _with_limit(best.metric("flash_bytes"), run.limit(summary.board, "flash_bytes"), kilobytes, "KB")),
            ("arch", f'<span class="arch">{escape(best.block_string)}</span>'),
            *rows,
        ]
    items = "".join(f"<dt>{name}</dt><dd>{value}</dd>" for name, value in rows)
    return (
        f'<div class="card" id="summary-{slug(summary.run)}-{slug(summary.board)}">'
        f"<h3>{escape(summary.board)}</h3><div class=\"run\">run {escape(summary.run)}</div>"
        f"{headline}<dl>{items}</dl></div>"
    )


def _with_limit(
    value: float | None,
    limit: float | None,
    show: Callable[[Any], str],
    unit: str,
    interval: tuple[float | None, float | None] = (None, None),
) -> str:
    """``value unit`` [``(low-high)`` when the estimate has an interval] [``of limit unit``]."""
    if value is None:
        return "&ndash;"
    low, high = interval
    shown = f"{show(value)} {unit}" + (f" ({show(low)}&ndash;{show(high)})" if low is not None and high is not None else "")
    return shown if limit is None else f"{shown} of {show(limit)} {unit}"


def figure_html(figure: FigureRef) -> str:
    """A figure as an inline SVG image with its caption."""
    data = base64.b64encode(figure.svg).decode("ascii")
    return (
        f'<figure><img id="{figure.element_id}" alt="{escape(figure.caption)}" '
        f'src="data:image/svg+xml;base64,{data}"><figcaption>{escape(figure.caption)}</figcaption></figure>'
    )


def _with_per_op_links(runs: Sequence[RunData], rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The validation rows with the file URI of each export's ``per_op.txt`` (where it exists)."""
    paths = {run.label: Path(run.path) for run in runs}
    linked = []
    for row in rows:
        per_op = paths[row["run"]] / "exports" / str(row["board"]) / str(row["number"]) / "per_op.txt"
        linked.append({**row, "per_op_uri": per_op.resolve().as_uri() if per_op.is_file() else None})
    return linked


def table_html(element_id: str, columns: Sequence[Column], rows: Sequence[dict[str, Any]]) -> str:
    """A sortable table of ``rows`` (raw values; each column shows its own)."""
    head = "".join(
        f'<th class="{"t" if c.show is text else "n"}">{escape(c.header)}</th>' for c in columns
    )
    body = []
    for row in rows:
        cells = []
        for c in columns:
            value = row.get(c.key)
            css = "t arch" if c.key == "block_string" else ("t" if c.show is text else "n")
            sort_value = "" if value is None else str(value)
            shown = escape(c.show(value))
            if c.key == "per_op_uri" and value:
                shown = f'<a href="{escape(value)}">per op</a>'
            cells.append(f'<td class="{css}" data-v="{escape(sort_value)}">{shown}</td>')
        body.append("<tr>" + "".join(cells) + "</tr>")
    return (
        f'<div class="scroll"><table class="sortable" id="{element_id}"><thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(body)}</tbody></table></div>"
    )
