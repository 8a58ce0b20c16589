"""Zuul pipelines rendered from one description (zuul-config/pipeline-model.yaml).

``devinfra_zuul_pipelines(model, driver, connection, bot)`` turns the model's
meanings (``proposed``, ``core-approved``, ``merged``...) into a driver's
triggers, requirements and reports, as a list of Zuul ``pipeline`` objects:

- ``gerrit`` (production): votes. Check reports Verified, a core approves
  with Workflow +1 and Code-Review +2, a core's Code-Review -2 is a veto, the
  gate submits.
- ``pagure`` (the AIO): status flags and comments. Zuul's pagure driver
  counts anyone's ``:thumbsup:`` (its ``score``) and Pagure lets a pull
  request's author tag it, so neither can say "a core approved". The gate
  therefore has no trigger of its own: the ``review`` pipeline (pagure only)
  runs the trusted job devinfra-review-policy on every vote and check
  result; the job reads the votes and the project's core group from
  Pagure's API and enqueues the change in the gate (or takes it out on a
  veto) through Zuul's API. MEANINGS_NOT_AVAILABLE names what a driver has
  no event for.

A meaning that a driver cannot express, and that is not declared there,
fails the rendering with a sentence naming it.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence

try:
    from ansible.errors import AnsibleFilterError
except ImportError:  # pragma: no cover - only without ansible installed
    AnsibleFilterError = ValueError  # type: ignore[misc,assignment]

MEANINGS = ("proposed", "restored", "recheck", "open", "current", "checked", "core-approved",
            "no-core-veto", "merged")
# What a driver has no way to say, and why (the rendering leaves it out).
MEANINGS_NOT_AVAILABLE = {
    "pagure": {
        "restored": "Zuul's pagure driver has no event for a reopened pull request",
        "current": "a pull request's head is always its current revision",
    },
}
RECHECK_GERRIT = r"(?i)^(Patch Set [0-9]+:)?( [\w\\+-]*)*(\n\n)?\s*recheck"
RECHECK_PAGURE = r"(?i)^\s*recheck\s*$"
REVIEW_PIPELINE = "review"
REVIEW_JOB = "devinfra-review-policy"
KEYS = ("name", "description", "manager", "precedence", "supercedes", "post-review", "events", "require",
        "report", "window-floor", "window-increase-factor", "timer")


def _fail(where: str, message: str):
    raise AnsibleFilterError(f"pipeline model: {where}: {message}")


def _gerrit_trigger(meaning: str, bot: str) -> dict | None:
    return {
        "proposed": {"event": "patchset-created"},
        "restored": {"event": "change-restored"},
        "recheck": {"event": "comment-added", "comment": RECHECK_GERRIT},
        "core-approved": {"event": "comment-added", "approval": [{"Workflow": 1}]},
        "checked": {"event": "comment-added", "approval": [{"Verified": 1}], "username": bot},
        "merged": {"event": "change-merged"},
    }.get(meaning)


def _gerrit(pipeline: Mapping, connection: str, bot: str) -> dict:
    out = _common(pipeline)
    where = pipeline["name"]
    triggers = []
    for meaning in pipeline.get("events", []):
        trigger = _gerrit_trigger(meaning, bot)
        if trigger is None:
            _fail(where, f"`{meaning}` is not an event Gerrit can trigger on")
        triggers.append(trigger)
    require, reject = {}, {}
    for meaning in pipeline.get("require", []):
        if meaning == "open":
            require["open"] = True
        elif meaning == "current":
            require["current-patchset"] = True
        elif meaning == "checked":
            require.setdefault("approval", []).append({"Verified": [1, 2], "username": bot})
        elif meaning == "core-approved":
            require.setdefault("approval", []).extend([{"Workflow": 1}, {"Code-Review": 2}])
        elif meaning == "no-core-veto":
            reject.setdefault("approval", []).append({"Code-Review": [-2]})
        else:
            _fail(where, f"`{meaning}` is not a requirement Gerrit can check")
    if require:
        out["require"] = {connection: require}
    if reject:
        out["reject"] = {connection: reject}
    if triggers:
        out["trigger"] = {connection: triggers}
    failed = -2 if pipeline["manager"] == "dependent" else -1
    verdicts = {"pending": {"Verified": 0}, "passed": {"Verified": 1}, "failed": {"Verified": failed},
                "merged": {"Verified": 2, "submit": True}, "result": {}}
    for phase, verdict in (pipeline.get("report") or {}).items():
        if verdict not in verdicts:
            _fail(where, f"report {phase}: `{verdict}` is not a Gerrit report")
        out[phase] = {connection: copy.deepcopy(verdicts[verdict])}
    return out


def _pagure(pipeline: Mapping, connection: str, bot: str) -> list[dict]:
    out = _common(pipeline)
    where = pipeline["name"]
    gaps = MEANINGS_NOT_AVAILABLE["pagure"]
    via_review = {"core-approved", "checked"} if pipeline["manager"] == "dependent" else set()
    triggers, require, extra = [], {}, []
    for meaning in pipeline.get("events", []):
        if meaning in gaps or meaning in via_review:
            continue
        trigger = {
            "proposed": {"event": "pg_pull_request", "action": ["opened", "changed"]},
            "recheck": {"event": "pg_pull_request", "action": "comment", "comment": RECHECK_PAGURE},
            "merged": {"event": "pg_pull_request", "action": "closed"},
        }.get(meaning)
        if trigger is None:
            _fail(where, f"`{meaning}` is not an event Pagure can trigger on")
        triggers.append(trigger)
        if meaning == "merged":
            require["merged"] = True
    for meaning in pipeline.get("require", []):
        if meaning in gaps:
            continue
        if meaning == "open":
            require["open"] = True
        elif meaning == "checked":
            require["status"] = "success"
        elif meaning in ("core-approved", "no-core-veto"):
            # Checked by devinfra-review-policy before it enqueues the change.
            if pipeline["manager"] != "dependent":
                _fail(where, f"`{meaning}` can be required only by a dependent (gating) pipeline on Pagure")
        else:
            _fail(where, f"`{meaning}` is not a requirement Pagure can check")
    if require:
        out["require"] = {connection: require}
    if triggers:
        out["trigger"] = {connection: triggers}
    verdicts = {"pending": {"status": "pending", "comment": False}, "passed": {"status": "success"},
                "failed": {"status": "failure"}, "merged": {"status": "success", "merge": True},
                "result": {}}
    for phase, verdict in (pipeline.get("report") or {}).items():
        if verdict not in verdicts:
            _fail(where, f"report {phase}: `{verdict}` is not a Pagure report")
        report = copy.deepcopy(verdicts[verdict])
        if pipeline["manager"] == "dependent" and verdict == "pending":
            # Zuul's pagure driver merges only while its own last flag says
            # success (the check's): a gate that flagged "pending" could never merge.
            report = {"comment": False}
        out[phase] = {connection: report}
    if via_review & set(pipeline.get("events", [])):
        extra.append({
            "name": REVIEW_PIPELINE,
            "description": (
                f"Every vote on a pull request (:thumbsup: approves, :thumbsdown: vetoes) and every check "
                f"result: {REVIEW_JOB} counts the votes of the project's core group only and enqueues the "
                f"change in {pipeline['name']} (or takes it out on a veto) through Zuul's API."),
            "manager": "independent",
            "precedence": "high",
            "post-review": True,
            "require": {connection: {"open": True}},
            "trigger": {connection: [
                {"event": "pg_pull_request_review", "action": ["thumbsup", "thumbsdown"]},
                {"event": "pg_pull_request", "action": "status", "status": "success"},
            ]},
            "success": {connection: {"comment": False}},
            "failure": {connection: {"comment": False}},
        })
    return [out, *extra]


def _common(pipeline: Mapping) -> dict:
    out = {"name": pipeline["name"], "description": pipeline["description"], "manager": pipeline["manager"],
           "precedence": pipeline["precedence"]}
    for key in ("supercedes", "post-review", "window-floor", "window-increase-factor"):
        if key in pipeline:
            out[key] = copy.deepcopy(pipeline[key])
    if "timer" in pipeline:
        out["trigger"] = {"timer": [{"time": pipeline["timer"]}]}
    return out


def check_model(model: Sequence[Mapping]) -> None:
    if not isinstance(model, Sequence) or isinstance(model, str):
        _fail("model", "must be a list of pipelines")
    for index, pipeline in enumerate(model):
        where = f"[{index}] ({pipeline.get('name', '?') if isinstance(pipeline, Mapping) else '?'})"
        if not isinstance(pipeline, Mapping):
            _fail(where, "expected a mapping")
        unknown = set(pipeline) - set(KEYS)
        if unknown:
            _fail(where, f"unknown key(s) {', '.join(sorted(unknown))}")
        for key in ("name", "description", "manager", "precedence"):
            if key not in pipeline:
                _fail(where, f"needs `{key}`")
        for key in ("events", "require"):
            for meaning in pipeline.get(key, []):
                if meaning not in MEANINGS:
                    _fail(where, f"{key}: `{meaning}` is not a meaning ({', '.join(MEANINGS)})")


def pipelines(model: Sequence[Mapping], driver: str, connection: str | None = None,
              bot: str = "zuul") -> list[dict]:
    """The model rendered for ``driver`` (gerrit or pagure) on ``connection`` (default: the driver's name)."""
    check_model(model)
    connection = connection or driver
    rendered: list[dict] = []
    for pipeline in model:
        if driver == "gerrit":
            rendered.append(_gerrit(pipeline, connection, bot))
        elif driver == "pagure":
            rendered.extend(_pagure(pipeline, connection, bot))
        else:
            _fail("driver", f"`{driver}` is neither gerrit nor pagure")
    return rendered


def as_zuul_config(rendered: Sequence[Mapping]) -> list[dict]:
    """The pipelines as Zuul's configuration objects (``- pipeline: {...}``)."""
    return [{"pipeline": dict(p)} for p in rendered]


def aio_skipped(objects: Sequence[Mapping]) -> dict[str, str]:
    """Job name to why it cannot run in the AIO (vars.devinfra_aio_skip, inherited from its parents)."""
    jobs = {o["job"]["name"]: o["job"] for o in objects if isinstance(o, Mapping) and "job" in o}

    def reason(name: str, seen: tuple[str, ...] = ()) -> str:
        job = jobs.get(name) or {}
        own = (job.get("vars") or {}).get("devinfra_aio_skip")
        if own or not job.get("parent") or name in seen:
            return own or ""
        return reason(job["parent"], (*seen, name))

    return {name: reason(name) for name in jobs if reason(name)}


def aio_project(objects: Sequence[Mapping], name: str, pipelines_: Sequence[str]) -> dict:
    """The repository's project stanza (zuul.d/) for the AIO: each pipeline's jobs but the skipped ones."""
    skipped = aio_skipped(objects)
    stanza: dict = {"name": name}
    for obj in objects:
        project = obj.get("project") if isinstance(obj, Mapping) else None
        if not isinstance(project, Mapping) or project.get("name") not in (None, name):
            continue
        for pipeline in pipelines_:
            jobs = ((project.get(pipeline) or {}).get("jobs")) or []
            kept = [j for j in jobs if (j if isinstance(j, str) else next(iter(j))) not in skipped]
            if kept:
                stanza.setdefault(pipeline, {"jobs": []})["jobs"].extend(copy.deepcopy(kept))
    return stanza


class FilterModule:
    def filters(self):
        return {"devinfra_zuul_pipelines": pipelines, "devinfra_zuul_aio_project": aio_project,
                "devinfra_zuul_aio_skipped": aio_skipped}
