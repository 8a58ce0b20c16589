"""The deploy status page and deploy metrics, made from the bastion's deploy history.

After each deploy, devinfra-deploy-merged (roles/bastion/files) appends one
JSON line per playbook run to the deploy history:

    {"playbook": "service-etherpad.yaml", "job": "deploy-etherpad", "status": "ok",
     "reason": "", "seconds": 41.2, "commit": "<sha>", "subject": "Merge #12 `Pin it`",
     "change": "#12 Pin it", "change_url": "https://...", "merged_at": 1700000000,
     "started_at": 1700000050.1, "finished_at": 1700000091.3, "merge_to_applied": 91.3}

and runs ``devinfra status-page``, which writes from it:

- ``<out>/index.html``: one row per service (playbook) with its deployed
  commit (the commit of its last successful run), the change that brought
  it, when it was applied, how long the run took and how long after the
  merge, and its last run's result; a failed or skipped last run is shown
  under the deployed commit. Below, a plot (inline SVG) and a table of the
  last N runs. Self-contained: inline CSS, no JavaScript, nothing fetched;
  every text of the history is HTML-escaped (commit subjects are anyone's);
- ``<out>/deploys.json``: the records of the last N runs (newest first) and
  each service's deployed and last run;
- ``--textfile``: node exporter textfile metrics per playbook (METRICS).

Every file is written whole or not at all (a temporary file renamed over
it), so a web server or the node exporter never reads half of one.
"""

from __future__ import annotations

import contextlib
import html
import json
import math
import os
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from devinfra.errors import DevinfraError

DEFAULT_LAST = 50
STATUSES = ("ok", "failed", "skipped")
COLOURS = {"ok": "#2e7d32", "failed": "#c62828", "skipped": "#757575", "unknown": "#6a1b9a"}
DASH = "\u2014"


class StatusError(DevinfraError):
    """A history that cannot be read or a page that cannot be written; the message says which."""


@dataclass
class Service:
    """A playbook's runs in the history: its last run, and its last successful one."""

    playbook: str
    last: dict
    deployed: dict | None = None


def load_history(path: Path) -> list[dict]:
    """The history's records, oldest first (by finished_at, ties in the file's order)."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise StatusError(f"cannot read the deploy history {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise StatusError(f"cannot read the deploy history {path}: not UTF-8 ({exc})") from None
    records = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError as exc:
            raise StatusError(f"{path}, line {number}: not JSON ({exc})") from None
        if not isinstance(record, dict):
            raise StatusError(f"{path}, line {number}: not a JSON object")
        missing = _missing(record)
        if missing:
            raise StatusError(f"{path}, line {number}: the record has no valid {missing!r}")
        records.append(record)
    return sorted(records, key=lambda r: r["finished_at"])


def _number(value: object) -> float | None:
    """A finite JSON number as a float, else None (booleans and NaN are no numbers here)."""
    if not isinstance(value, int | float) or isinstance(value, bool) or not math.isfinite(value):
        return None
    return float(value)


def _missing(record: dict) -> str | None:
    """The first field a history record must have and has not (the rest is shown when present)."""
    for key in ("playbook", "status"):
        if not isinstance(record.get(key), str) or not record[key]:
            return key
    return "finished_at" if _number(record.get("finished_at")) is None else None


def services(records: Sequence[dict]) -> list[Service]:
    """One Service per playbook of the records (oldest first), by playbook name."""
    found: dict[str, Service] = {}
    for record in records:
        service = found.setdefault(record["playbook"], Service(record["playbook"], record))
        service.last = record
        if record["status"] == "ok":
            service.deployed = record
    return [found[name] for name in sorted(found)]


# -- formatting ---------------------------------------------------------------

def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def utc(timestamp: object) -> str:
    """Unix time as UTC ISO 8601 (seconds), or a dash when unknown."""
    value = _number(timestamp)
    if value is None:
        return DASH
    try:
        return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(value))
    except (OverflowError, OSError, ValueError):
        return f"{value:g}"


def _seconds(value: object) -> str:
    number = _number(value)
    return f"{number:.1f}" if number is not None else DASH


def _status_class(record: dict) -> str:
    return record["status"] if record["status"] in STATUSES else "unknown"


def _commit(record: dict) -> str:
    commit = str(record.get("commit") or "")
    return f'<code title="{_e(commit)}">{_e(commit[:10])}</code>' if commit else DASH


def _change(record: dict) -> str:
    """The change (the commit's subject as its tooltip), a link to it when the record has a web one."""
    subject = str(record.get("subject") or "")
    text = _e(record.get("change") or subject or DASH)
    title = f' title="{_e(subject)}"' if subject else ""
    url = str(record.get("change_url") or "")
    # Only web links: a javascript: URL in a commit message must not become one.
    if url.startswith(("https://", "http://")):
        return f'<a href="{_e(url)}"{title}>{text}</a>'
    return f"<span{title}>{text}</span>" if title else text


def _result(record: dict) -> str:
    reason = f' <span class="reason">{_e(record["reason"])}</span>' if record.get("reason") else ""
    return f'<span class="status {_status_class(record)}">{_e(record["status"])}</span>{reason}'


def _row(cells: Sequence[str]) -> str:
    return "<tr>" + "".join(f"<td>{cell}</td>" for cell in cells) + "</tr>"


def _table(headers: Sequence[str], rows: Sequence[str], css_class: str) -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in headers)
    return f'<table class="{css_class}">\n<thead><tr>{head}</tr></thead>\n<tbody>\n' \
           + "\n".join(rows) + "\n</tbody>\n</table>"


def service_row(service: Service) -> str:
    """The service's row: its deployed run (a non-ok last run under it) and its last result."""
    deployed, last = service.deployed, service.last
    commit = _commit(deployed) if deployed else '<span class="never">never applied</span>'
    if last is not deployed:
        commit += (f'<div class="last-run {_status_class(last)}">last run {_e(last["status"].upper())} at '
                   f'{_commit(last)} {_e(utc(last["finished_at"]))}'
                   + (f': {_e(last["reason"])}' if last.get("reason") else "") + "</div>")
    shown = deployed or {}
    return _row([
        f"<strong>{_e(service.playbook)}</strong>", commit,
        _change(deployed) if deployed else DASH,
        _e(utc(shown.get("finished_at"))), _result(last),
        _seconds(shown.get("seconds")), _seconds(shown.get("merge_to_applied"))])


def run_row(record: dict) -> str:
    """A row of the table of the last runs."""
    return _row([_e(utc(record["finished_at"])), _e(record["playbook"]), _commit(record),
                 _change(record), _result(record), _seconds(record.get("seconds")),
                 _seconds(record.get("merge_to_applied"))])


# -- the plot -----------------------------------------------------------------

def nice_ticks(top: float, count: int = 4) -> list[float]:
    """Round tick values from 0 to at least top: a step of 1, 2 or 5 times a power of ten."""
    if top <= 0:
        return [0.0, 1.0]
    rough = top / count
    power = 10 ** math.floor(math.log10(rough))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= rough)
    return [i * step for i in range(math.ceil(top / step - 1e-9) + 1)]


def _plot_value(record: dict) -> tuple[float, bool]:
    """The run's y: merge-to-applied seconds (True) or, when unknown, the run's seconds (False)."""
    merge = _number(record.get("merge_to_applied"))
    if merge is not None:
        return merge, True
    return _number(record.get("seconds")) or 0.0, False


def _mark(x: float, y: float, colour: str, from_merge: bool, css: str = "", title: str = "") -> str:
    tooltip = f"<title>{_e(title)}</title>" if title else ""
    css = f' class="{css}"' if css else ""
    if from_merge:
        return f'<circle{css} cx="{x:.1f}" cy="{y:.1f}" r="4" fill="{colour}">{tooltip}</circle>'
    return (f'<rect{css} x="{x - 3.5:.1f}" y="{y - 3.5:.1f}" width="7" height="7" '
            f'fill="{colour}">{tooltip}</rect>')


def plot(runs: Sequence[dict], width: int = 900, height: int = 320) -> str:
    """An inline SVG of the runs (oldest first): one mark per run, failed runs in red."""
    left, right, top, bottom = 70, 20, 40, 60
    inner_w, inner_h = width - left - right, height - top - bottom
    values = [_plot_value(r) for r in runs]
    ticks = nice_ticks(max((v for v, _ in values), default=0.0))
    y_max = ticks[-1]

    def x_of(index: int) -> float:
        inset = 12  # the first and last marks clear of the axes
        span = inner_w - 2 * inset
        return left + inset + (span * index / (len(runs) - 1) if len(runs) > 1 else span / 2)

    def y_of(value: float) -> float:
        return top + inner_h * (1 - value / y_max)

    parts = [f'<svg class="plot" xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}" role="img" '
             'aria-label="seconds from merge to applied, per deploy">']
    for tick in ticks:
        y = y_of(tick)
        parts.append(f'<line class="grid" x1="{left}" y1="{y:.1f}" x2="{width - right}" y2="{y:.1f}"/>'
                     f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end">{tick:g}</text>')
    step = max(1, math.ceil(len(runs) / 10))
    for index in range(0, len(runs), step):
        parts.append(f'<text x="{x_of(index):.1f}" y="{top + inner_h + 16}" text-anchor="middle">'
                     f'{index + 1}</text>')
    parts.append(f'<line class="axis" x1="{left}" y1="{top + inner_h}" x2="{width - right}" '
                 f'y2="{top + inner_h}"/><line class="axis" x1="{left}" y1="{top}" x2="{left}" '
                 f'y2="{top + inner_h}"/>')
    span = f"{utc(runs[0]['finished_at'])} to {utc(runs[-1]['finished_at'])}" if runs else ""
    parts.append(f'<text x="{left + inner_w / 2:.1f}" y="{height - 12}" text-anchor="middle">'
                 f'run, oldest to newest ({_e(span)})</text>')
    parts.append(f'<text transform="rotate(-90)" x="{-(top + inner_h / 2):.1f}" y="16" '
                 f'text-anchor="middle">seconds</text>')
    for index, (record, (value, from_merge)) in enumerate(zip(runs, values, strict=True)):
        what = "merge to applied" if from_merge else "run"
        title = (f"{record['playbook']} {str(record.get('commit') or '')[:10]} {record['status']} "
                 f"{utc(record['finished_at'])}: {value:.1f} s {what}")
        parts.append(_mark(x_of(index), y_of(value), COLOURS[_status_class(record)], from_merge,
                           f"run {_status_class(record)}", title))
    legend = [(COLOURS["ok"], True, "ok"), (COLOURS["failed"], True, "failed"),
              (COLOURS["skipped"], True, "skipped"),
              ("#444", True, "seconds from merge to applied"),
              ("#444", False, "run seconds (merge time unknown)")]
    x = left
    for colour, from_merge, label in legend:
        parts.append(_mark(x + 4, 16, colour, from_merge)
                     + f'<text x="{x + 12}" y="20">{_e(label)}</text>')
        x += 24 + 7 * len(label)
    parts.append("</svg>")
    return "\n".join(parts)


# -- the page -----------------------------------------------------------------

STYLE = """
body { font-family: system-ui, sans-serif; margin: 1.5em; color: #222; }
table { border-collapse: collapse; margin: 1em 0; }
th, td { border: 1px solid #ccc; padding: 0.3em 0.6em; text-align: left; vertical-align: top; }
th { background: #f0f0f0; }
code { font-size: 0.95em; }
.status { font-weight: bold; }
.status.ok { color: #2e7d32; } .status.failed { color: #c62828; }
.status.skipped { color: #757575; } .status.unknown { color: #6a1b9a; }
.last-run { margin-top: 0.3em; font-size: 0.9em; }
.last-run.failed { color: #c62828; } .last-run.skipped, .never { color: #757575; }
.reason { color: #555; font-size: 0.9em; }
.generated { color: #555; }
svg.plot { font-size: 11px; }
svg.plot .grid { stroke: #e0e0e0; } svg.plot .axis { stroke: #444; }
"""
SERVICE_HEADERS = ("service", "deployed commit", "change", "applied (UTC)", "last result",
                   "seconds", "merge to applied (s)")
RUN_HEADERS = ("finished (UTC)", "service", "commit", "change", "result", "seconds",
               "merge to applied (s)")


def page(records: Sequence[dict], now: float, last: int = DEFAULT_LAST) -> str:
    """The status page of the records (oldest first)."""
    runs = list(records[-last:])
    body = [f'<p class="generated">Generated {_e(utc(now))} from {len(records)} recorded run(s). '
            "A service's deployed commit is the commit of its last successful run; the seconds "
            "are that run's.</p>"]
    if records:
        body += ["<h2>Services</h2>",
                 _table(SERVICE_HEADERS, [service_row(s) for s in services(records)], "services"),
                 f"<h2>Last {len(runs)} deploy(s)</h2>", plot(runs),
                 _table(RUN_HEADERS, [run_row(r) for r in reversed(runs)], "runs")]
    else:
        body.append("<p>No deploy recorded yet.</p>")
    # The policy forbids scripts and anything fetched, should some text ever escape escaping.
    return "\n".join([
        "<!DOCTYPE html>", '<html lang="en">', "<head>", '<meta charset="utf-8">',
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; "
        "style-src 'unsafe-inline'\">",
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        "<title>devinfra deploys</title>", f"<style>{STYLE}</style>", "</head>", "<body>",
        "<h1>devinfra deploys</h1>", *body, "</body>", "</html>", ""])


def deploys_json(records: Sequence[dict], now: float, last: int = DEFAULT_LAST) -> dict:
    """What the page shows, as data: the last runs' records newest first, each service's deployed and
    last run."""
    return {"generated_at": utc(now), "records": list(reversed(records[-last:])),
            "services": [{"playbook": s.playbook, "deployed": s.deployed, "last_run": s.last}
                         for s in services(records)]}


# -- the metrics --------------------------------------------------------------

def _finished(record: dict | None) -> float | None:
    return record["finished_at"] if record else None


METRICS: tuple[tuple[str, str, Callable[[Service], object]], ...] = (
    ("devinfra_deploy_last_run_timestamp_seconds",
     "When the playbook's last deploy run finished (Unix time)", lambda s: _finished(s.last)),
    ("devinfra_deploy_last_success_timestamp_seconds",
     "When the playbook's last successful deploy run finished (Unix time)",
     lambda s: _finished(s.deployed)),
    ("devinfra_deploy_last_failed",
     "1 when the playbook's last deploy run did not succeed (failed or skipped), else 0",
     lambda s: int(s.last["status"] != "ok")),
    ("devinfra_deploy_last_merge_to_applied_seconds",
     "Seconds from the merge of the playbook's deployed commit to the end of its successful run",
     lambda s: s.deployed.get("merge_to_applied") if s.deployed else None),
)


def _label(value: str) -> str:
    """A label value escaped as the exposition format wants it."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _sample(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def textfile(records: Sequence[dict]) -> str:
    """Node exporter textfile metrics of the records: METRICS, per playbook label."""
    lines = []
    every = services(records)
    for name, help_text, value_of in METRICS:
        lines += [f"# HELP {name} {help_text}.", f"# TYPE {name} gauge"]
        for service in every:
            value = _number(value_of(service))
            if value is not None:
                lines.append(f'{name}{{playbook="{_label(service.playbook)}"}} {_sample(value)}')
    return "\n".join(lines) + "\n"


# -- writing ------------------------------------------------------------------

def write_atomically(path: Path, text: str, mode: int = 0o644) -> None:
    """path holds text, whole, or is left as it was: a temporary file beside it renamed over it."""
    if path.parent.exists() and not path.parent.is_dir():
        raise StatusError(f"cannot write {path}: {path.parent} is not a directory")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(text)
            os.chmod(temporary, mode)
            os.replace(temporary, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temporary)
            raise
    except OSError as exc:
        raise StatusError(f"cannot write {path}: {exc.strerror or exc}") from None


def write(records: Sequence[dict], *, out: Path | None = None, textfile_path: Path | None = None,
          last: int = DEFAULT_LAST, now: float | None = None) -> list[Path]:
    """Write the page and deploys.json into out and the metrics to textfile_path (each if given)."""
    now = time.time() if now is None else now
    written = []
    if out is not None:
        for name, text in (("index.html", page(records, now, last)),
                           ("deploys.json", json.dumps(deploys_json(records, now, last), indent=1) + "\n")):
            write_atomically(out / name, text)
            written.append(out / name)
    if textfile_path is not None:
        write_atomically(textfile_path, textfile(records))
        written.append(textfile_path)
    return written
