"""devinfra-review-policy's verdict: only the core group's votes count, a core veto stands.

The module itself runs in the AIO's Zuul (tests/aio, against Pagure);
here, the rules on pull requests as Pagure's API returns them.
"""

import importlib.util
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PATH = ROOT / "zuul-config/playbooks/review-policy/library/devinfra_review_policy.py"
spec = importlib.util.spec_from_file_location("devinfra_review_policy", PATH)
policy = importlib.util.module_from_spec(spec)
sys.modules[spec.name] = policy
spec.loader.exec_module(policy)

CORES = {"alice", "carol"}


def comment(user, text, date, notification=False):
    return {"user": {"name": user}, "comment": text, "date_created": str(date), "notification": notification}


def verdict(*comments):
    return policy.verdict({"comments": list(comments)}, CORES)


def test_a_non_core_approval_counts_for_nothing():
    assert verdict(comment("bob", ":thumbsup: looks good", 10)) == {
        "approved_by": [], "vetoed_by": [], "not_counted": ["bob"], "enter_gate": False}


def test_a_core_approval_lets_the_change_in():
    result = verdict(comment("bob", ":thumbsup:", 10), comment("alice", "LGTM :thumbsup:", 11))
    assert result["approved_by"] == ["alice"] and result["enter_gate"] is True
    assert result["not_counted"] == ["bob"]


def test_a_core_veto_keeps_an_approved_change_out_until_the_same_core_approves():
    approved_and_vetoed = (comment("alice", ":thumbsup:", 10), comment("carol", ":thumbsdown: not yet", 11))
    assert verdict(*approved_and_vetoed)["enter_gate"] is False
    assert verdict(*approved_and_vetoed)["vetoed_by"] == ["carol"]
    # Another core's approval does not lift carol's veto...
    assert verdict(*approved_and_vetoed, comment("alice", ":thumbsup: again", 12))["enter_gate"] is False
    # ...carol's own does.
    lifted = verdict(*approved_and_vetoed, comment("carol", "fixed :thumbsup:", 13))
    assert lifted["enter_gate"] is True and lifted["approved_by"] == ["alice", "carol"]


def test_a_non_core_veto_does_not_block():
    result = verdict(comment("alice", ":thumbsup:", 10), comment("bob", ":thumbsdown:", 11))
    assert result["enter_gate"] is True and result["vetoed_by"] == []


def test_new_commits_drop_earlier_approvals_but_not_a_veto():
    update = comment("pagure", "**1 new commit added**", 20, notification=True)
    assert verdict(comment("alice", ":thumbsup:", 10), update)["enter_gate"] is False
    assert verdict(comment("carol", ":thumbsdown:", 10), update, comment("alice", ":thumbsup:", 21))[
        "vetoed_by"] == ["carol"]
    metadata = comment("pagure", "**Metadata Update from @alice**:\n- tag added", 20, notification=True)
    assert verdict(comment("alice", ":thumbsup:", 10), metadata)["enter_gate"] is True


def test_plain_comments_are_not_votes():
    assert verdict(comment("alice", "please rebase", 10))["approved_by"] == []


def status(pipeline, *ids):
    """Zuul 14's /status answer with one queue item per change id (items name their changes in refs)."""
    heads = [[{"id": f"uuid-{n}", "refs": [{"id": change_id, "project": "devinfra/system-config"}]}]
             for n, change_id in enumerate(ids)]
    return {"pipelines": [{"name": "check", "change_queues": []},
                          {"name": pipeline, "change_queues": [{"heads": heads}]}]}


def test_a_change_is_found_in_the_gate_by_its_refs():
    assert policy.in_pipeline(status("gate", "5,abc", "6,def"), "gate", "6,def")
    assert not policy.in_pipeline(status("gate", "5,abc"), "gate", "5,other-revision")
    assert not policy.in_pipeline(status("check", "5,abc"), "gate", "5,abc")
