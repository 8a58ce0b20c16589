#!/usr/bin/python
"""Ansible module devinfra_review_policy: see DOCUMENTATION."""

import json
import re
from urllib.parse import quote

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.urls import open_url

DOCUMENTATION = r"""
module: devinfra_review_policy
short_description: Let a Pagure pull request into Zuul's gate only on a core reviewer's approval
description:
  - Zuul's pagure driver counts anyone's C(:thumbsup:) and Pagure lets a pull request's author tag it, so
    neither can say "a core reviewer approved". This module, run by the trusted job devinfra-review-policy
    on every vote and check result, reads the pull request's comments and the project's core groups (the
    groups with commit or admin access) from Pagure's API and decides.
  - A core's latest vote counts. C(:thumbsup:) after the last code update approves; C(:thumbsdown:) is a
    veto that stands until the same core votes C(:thumbsup:). Votes of anyone else count for nothing and
    are named in the comment.
  - Approved, unvetoed and checked (Zuul's own flag is C(success)): the change is enqueued in the gate
    through Zuul's API. Vetoed while in the gate: it is taken out. The verdict is posted on the pull request.
author: devinfra
options:
  pagure_url: {description: Pagure's base URL., type: str, required: true}
  pagure_token_file: {description: File holding the bot's Pagure API token., type: path, required: true}
  zuul_url: {description: Zuul's base URL (its web root)., type: str, required: true}
  zuul_token_file: {description: File holding a Zuul API token with admin rights on the tenant., type: path,
                    required: true}
  tenant: {description: Zuul tenant., type: str, required: true}
  project: {description: The Pagure project (namespace/name)., type: str, required: true}
  number: {description: The pull request's number., type: int, required: true}
  revision: {description: The pull request's head commit., type: str, required: true}
  gate: {description: The gating pipeline., type: str, default: gate}
  bot: {description: Zuul's Pagure user (whose flag says the check passed)., type: str, default: zuul}
  bot_password_file:
    description:
      - File holding the bot's web password. Pagure computes a pull request's mergeability (which Zuul's
        gate requires) only when its web page asks for it; with this, the module asks the same way,
        logged in as the bot, before it enqueues.
    type: path
"""

RETURN = r"""
verdict:
  description: approved_by, vetoed_by, not_counted, checked, in_gate, action (enqueued, dequeued or none).
  returned: always
  type: dict
"""

METADATA = re.compile(r"^\*\*Metadata Update", re.MULTILINE)


def verdict(pull, cores):
    """Who approved (cores, since the last code update), who vetoes (cores, standing), who does not count."""
    last_update = 0
    for comment in pull.get("comments", []):
        if comment.get("notification") and not METADATA.match(comment.get("comment") or ""):
            last_update = max(last_update, int(comment["date_created"]))
    latest = {}
    for comment in sorted(pull.get("comments", []), key=lambda c: (int(c["date_created"]), c.get("id", 0))):
        if comment.get("notification"):
            continue
        text = comment.get("comment") or ""
        vote = 1 if ":thumbsup:" in text else -1 if ":thumbsdown:" in text else 0
        if vote:
            latest[comment["user"]["name"]] = (int(comment["date_created"]), vote)
    approved = sorted(u for u, (date, vote) in latest.items()
                      if u in cores and vote > 0 and date >= last_update)
    vetoed = sorted(u for u, (_date, vote) in latest.items() if u in cores and vote < 0)
    ignored = sorted(u for u in latest if u not in cores)
    return {"approved_by": approved, "vetoed_by": vetoed, "not_counted": ignored,
            "enter_gate": bool(approved) and not vetoed}


def in_pipeline(status, pipeline, change_id):
    """Whether Zuul's status (its /status answer) has the change "<number>,<revision>" queued in pipeline."""
    return any(
        any(ref.get("id") == change_id for ref in item.get("refs", []))
        for queued in status.get("pipelines", []) if queued.get("name") == pipeline
        for queue in queued.get("change_queues", []) for head in queue.get("heads", []) for item in head)


def refresh_mergeability(module, base, user, password, project, number, uid):
    """Have Pagure compute the pull request's merge status, as its web page does (login, then /pv/...)."""
    import http.cookiejar
    import urllib.request
    from urllib.parse import urlencode

    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))
    token = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"')
    try:
        login = opener.open(base + "/login/", timeout=30).read().decode()
        opener.open(base + "/dologin", data=urlencode(
            {"username": user, "password": password, "csrf_token": token.search(login).group(1)}).encode(),
            timeout=30).read()
        page = opener.open(f"{base}/{project}/pull-request/{number}", timeout=30).read().decode()
        answer = opener.open(base + "/pv/pull-request/merge", data=urlencode(
            {"requestid": uid, "csrf_token": token.search(page).group(1)}).encode(), timeout=60).read()
        return json.loads(answer).get("code", "")
    except Exception as exc:  # an answer without the form, a refused login, a network error
        module.fail_json(msg=f"could not have Pagure compute the mergeability of {project}#{number}: {exc}")


def call(module, url, token_header, method="GET", data=None, json_body=None):
    headers = {"Authorization": token_header}
    body = None
    if json_body is not None:
        headers["Content-Type"] = "application/json"
        body = json.dumps(json_body)
    elif data is not None:
        from urllib.parse import urlencode

        body = urlencode(data)
    try:
        response = open_url(url, method=method, headers=headers, data=body, timeout=30)
        return json.loads(response.read() or b"{}")
    except Exception as exc:  # urllib's HTTPError and connection errors
        detail = getattr(exc, "read", lambda: b"")()
        module.fail_json(msg=f"{method} {url}: {exc} {detail[:500]!r}")


def main():
    module = AnsibleModule(
        argument_spec=dict(
            pagure_url=dict(type="str", required=True),
            pagure_token_file=dict(type="path", required=True),
            zuul_url=dict(type="str", required=True),
            zuul_token_file=dict(type="path", required=True),
            tenant=dict(type="str", required=True),
            project=dict(type="str", required=True),
            number=dict(type="int", required=True),
            revision=dict(type="str", required=True),
            gate=dict(type="str", default="gate"),
            bot=dict(type="str", default="zuul"),
            bot_password_file=dict(type="path"),
        ),
        supports_check_mode=True,
    )
    p = module.params
    with open(p["pagure_token_file"]) as handle:
        pagure = "token " + handle.read().strip()
    with open(p["zuul_token_file"]) as handle:
        zuul = "Bearer " + handle.read().strip()
    api = p["pagure_url"].rstrip("/") + "/api/0/"
    project = call(module, api + p["project"], pagure)
    groups = set(project.get("access_groups", {}).get("admin", [])) | set(
        project.get("access_groups", {}).get("commit", []))
    cores = set()
    for group in sorted(groups):
        cores |= set(call(module, api + "group/" + quote(group), pagure).get("members", []))
    pull = call(module, f"{api}{p['project']}/pull-request/{p['number']}", pagure)
    result = verdict(pull, cores)
    flags = call(module, f"{api}{p['project']}/pull-request/{p['number']}/flag", pagure).get("flags", [])
    mine = [f for f in flags if f.get("user", {}).get("name") == p["bot"]]
    result["checked"] = bool(mine) and mine[0].get("status") == "success"
    result["core_groups"] = sorted(groups)
    zuul_api = f"{p['zuul_url'].rstrip('/')}/api/tenant/{p['tenant']}"
    status = call(module, f"{zuul_api}/status", zuul)
    change_id = f"{p['number']},{p['revision']}"
    in_gate = in_pipeline(status, p["gate"], change_id)
    result["in_gate"] = in_gate
    action = "none"
    result["mergeable"] = pull.get("cached_merge_status")
    if pull.get("status") == "Open":
        if result["enter_gate"] and result["checked"] and not in_gate:
            # Always recomputed: the cached status of a pull request goes stale
            # (then "unknown") when its target branch moves, and Zuul refuses
            # to enqueue a change whose cached status is not mergeable.
            if p["bot_password_file"]:
                with open(p["bot_password_file"]) as handle:
                    password = handle.read().strip()
                result["mergeable"] = refresh_mergeability(module, p["pagure_url"].rstrip("/"), p["bot"],
                                                           password, p["project"], p["number"], pull["uid"])
            action = "enqueued" if result["mergeable"] in ("FFORWARD", "MERGE") else "none"
        elif result["vetoed_by"] and in_gate:
            action = "dequeued"
    result["action"] = action
    if action != "none" and not module.check_mode:
        # Zuul's route takes the project's name as it is, slashes included.
        call(module, f"{zuul_api}/project/{p['project']}/{action[:-1]}", zuul, method="POST",
             json_body={"pipeline": p["gate"], "change": change_id})
    lines = []
    if result["approved_by"]:
        lines.append(f"Approved by core reviewer(s) {', '.join(result['approved_by'])}.")
    if result["vetoed_by"]:
        # No vote emoji in the bot's own words: Zuul would read them as a vote event.
        lines.append(f"Vetoed by core reviewer(s) {', '.join(result['vetoed_by'])}: kept out of {p['gate']} "
                     "until they approve.")
    if result["not_counted"]:
        lines.append(f"Not counted (not in {', '.join(sorted(groups)) or 'a core group'}): "
                     f"{', '.join(result['not_counted'])}.")
    if result["enter_gate"] and not result["checked"]:
        lines.append("Waiting for the check to pass before the gate.")
    elif result["enter_gate"] and action == "none" and not in_gate:
        lines.append(f"Pagure says it cannot be merged ({result['mergeable']}): rebase it.")
    lines.append({"enqueued": f"Enqueued in {p['gate']}.", "dequeued": f"Taken out of {p['gate']}.",
                  "none": "No change to the gate."}[action])
    if not module.check_mode:
        call(module, f"{api}{p['project']}/pull-request/{p['number']}/comment", pagure, method="POST",
             data={"comment": "devinfra-review-policy: " + " ".join(lines)})
    module.exit_json(changed=action != "none", verdict=result, msg=" ".join(lines))


if __name__ == "__main__":
    main()
