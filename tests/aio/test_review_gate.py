"""Code review and gating in the AIO, as a contributor and a core reviewer live them.

bob (no commit access) proposes changes from his fork; alice (infra-core)
approves or vetoes with :thumbsup: / :thumbsdown: comments. Zuul checks every
pull request, devinfra-review-policy lets only a core's approval into the
gate, the gate merges, the deploy pipeline applies. Runs against a deployed
AIO (`make aio`); skipped, with the reason, when there is none.
"""

from __future__ import annotations

import time
import uuid

import pytest
import review
from review import TITLE_FILE, Contributor, comment, in_pipeline, pull, served_title, wait, zuul_flag

NOT_TESTABLE = review.not_testable()
pytestmark = pytest.mark.skipif(bool(NOT_TESTABLE), reason=f"AIO review loop not testable: {NOT_TESTABLE}")
FIGURES = review.ROOT / ".artifacts" / "aio-review-figures.json"
CHECK_TIMEOUT = 900
GATE_TIMEOUT = 1200


def figure(name: str, value) -> None:
    review.record_figure(FIGURES, name, value)


def set_title(title: str):
    return review.set_line(TITLE_FILE, "etherpad_title", title)


def policy_said(number: int, after: int) -> str:
    """The review policy's newest comment on the pull request posted after <after> comments."""
    said = [c["comment"] for c in pull(number)["comments"][after:]
            if c["user"]["name"] == "zuul" and c["comment"].startswith("devinfra-review-policy:")]
    return said[-1] if said else ""


@pytest.fixture(scope="module")
def bob(tmp_path_factory):
    return Contributor("bob", tmp_path_factory.mktemp("bob"), fork=True)


def test_a_contributors_change_is_checked_gated_on_a_core_approval_merged_and_deployed(bob):
    title = f"devinfra AIO pad {uuid.uuid4().hex[:8]}"
    opened = time.monotonic()
    number, _ = bob.propose("Rename the AIO's pad", set_title(title))
    wait(lambda: zuul_flag(number) == "success", CHECK_TIMEOUT, f"check passing on pull request {number}")
    figure("opened_to_check_reported_seconds", round(time.monotonic() - opened, 1))

    # A contributor's approval counts for nothing: the gate does not start.
    seen = len(pull(number)["comments"])
    comment("bob", number, ":thumbsup: looks right to me")
    said = wait(lambda: policy_said(number, seen), 300, "the review policy's verdict on bob's vote")
    assert "Not counted (not in infra-core): bob" in said and "No change to the gate" in said
    assert not in_pipeline("gate", number) and pull(number)["status"] == "Open"

    # A core's approval starts the gate, which merges.
    approved = time.monotonic()
    comment("alice", number, ":thumbsup:")
    wait(lambda: pull(number)["status"] == "Merged", GATE_TIMEOUT, f"the gate merging pull request {number}")
    merged = time.monotonic()
    figure("approved_to_merged_seconds", round(merged - approved, 1))

    # Only the playbook the change touched runs, and the new title is served.
    wait(lambda: served_title() == title, GATE_TIMEOUT, "the new title served by Etherpad", interval=2)
    figure("merged_to_served_seconds", round(time.monotonic() - merged, 1))
    deploys = wait(lambda: review.buildsets("deploy", number), 600, "the deploy buildset")
    assert review.results(deploys[0]) == {"deploy-etherpad": "SUCCESS"}


def test_a_change_that_breaks_lint_is_reported_and_cannot_merge_even_approved(bob):
    def break_lint(tree):
        path = tree / TITLE_FILE
        # A duplicate key with trailing spaces: yamllint --strict refuses both.
        path.write_text(path.read_text() + "etherpad_title:   trailing   \n")
    number, _ = bob.propose("Break the lint", break_lint)
    wait(lambda: zuul_flag(number) == "failure", CHECK_TIMEOUT, f"check failing on pull request {number}")
    seen = len(pull(number)["comments"])
    comment("alice", number, ":thumbsup:")
    said = wait(lambda: policy_said(number, seen), 300, "the review policy's verdict")
    assert "Approved by core reviewer(s) alice" in said and "Waiting for the check to pass" in said
    assert not in_pipeline("gate", number)
    time.sleep(20)
    assert pull(number)["status"] == "Open"
    review.close("bob", number)


def test_a_core_veto_keeps_an_approved_change_out_of_the_gate_until_withdrawn(bob):
    title = f"devinfra AIO pad {uuid.uuid4().hex[:8]}"
    number, _ = bob.propose("Rename the AIO's pad again", set_title(title))
    wait(lambda: zuul_flag(number) == "success", CHECK_TIMEOUT, f"check passing on pull request {number}")
    # carol (infra-core) vetoes; alice's approval then leaves the change out of the gate.
    seen = len(pull(number)["comments"])
    comment("carol", number, ":thumbsdown: not before the maintenance window")
    wait(lambda: "Vetoed by core reviewer(s) carol" in policy_said(number, seen), 300,
         "the verdict on carol's veto")
    seen = len(pull(number)["comments"])
    comment("alice", number, ":thumbsup:")
    said = wait(lambda: policy_said(number, seen), 300, "the verdict on alice's approval")
    assert "Approved by core reviewer(s) alice" in said and "Vetoed by core reviewer(s) carol" in said
    assert "No change to the gate" in said and not in_pipeline("gate", number)
    time.sleep(20)
    assert pull(number)["status"] == "Open"
    # carol withdraws her veto: the change enters the gate and merges.
    seen = len(pull(number)["comments"])
    comment("carol", number, ":thumbsup: window open")
    said = wait(lambda: policy_said(number, seen), 300, "the verdict once the veto is withdrawn")
    assert "Enqueued in gate" in said
    wait(lambda: pull(number)["status"] == "Merged", GATE_TIMEOUT, f"the gate merging pull request {number}")


PROBE_FILE = "bench/bench_yamlgroup.py"
OTHER_FILE = "bench/bench_mirror.py"


def define(name: str, value: str, at_end: bool):
    """A change for Contributor.propose: a function <name> in PROBE_FILE, before its main guard or at its end.

    Each alone is clean; both together redefine the function, which ruff
    (F811, in devinfra-lint) refuses: a semantic conflict git merges cleanly.
    """
    def change(tree):
        path = tree / PROBE_FILE
        text = path.read_text()
        function = f"def {name}():\n    return {value!r}\n"
        if at_end:
            text = f"{text}\n\n{function}"
        else:
            guard = 'if __name__ == "__main__":'
            text = text.replace(guard, f"{function}\n\n{guard}")
        path.write_text(text)
    return change


def touch_docstring(tree) -> None:
    path = tree / OTHER_FILE
    lines = path.read_text().splitlines(keepends=True)
    lines[0] = lines[0].replace('"""', '"""AIO gate test: ', 1)
    path.write_text("".join(lines))


@pytest.fixture(scope="module")
def alice(tmp_path_factory):
    return Contributor("alice", tmp_path_factory.mktemp("alice"), fork=False)


def test_two_approved_changes_the_first_failing_the_second_is_retested_without_it_and_merges(bob, alice):
    alice.git("fetch", "-q", "upstream", "master")
    before = alice.git("rev-parse", "upstream/master").strip()
    name = f"gate_probe_{uuid.uuid4().hex[:8]}"
    try:
        # Three changes, each clean alone: ahead (defines <name> at the end of
        # the file), first (defines it again before the main guard) and second
        # (unrelated). Once ahead merges, first breaks lint; second does not.
        ahead, _ = bob.propose("Add a gate probe at the end", define(name, "ahead", at_end=True))
        first, _ = bob.propose("Add the same gate probe above main", define(name, "first", at_end=False))
        second, _ = bob.propose("Mark the mirror bench as touched by the gate test", touch_docstring)
        for number in (ahead, first, second):
            wait(lambda n=number: zuul_flag(n) == "success", CHECK_TIMEOUT, f"check passing on {number}")

        comment("alice", ahead, ":thumbsup:")
        wait(lambda: pull(ahead)["status"] == "Merged", GATE_TIMEOUT, f"the gate merging {ahead}")
        comment("alice", first, ":thumbsup:")
        first_item = wait(lambda: review.item("gate", first), 300, f"{first} in the gate")
        comment("alice", second, ":thumbsup:")
        # second is queued behind first ...
        wait(lambda: (review.item("gate", second) or {}).get("item_ahead") == first_item["id"], 300,
             f"{second} queued behind {first} in the gate")

        # ... first fails and leaves the gate unmerged; second is re-tested alone and merges.
        wait(lambda: pull(second)["status"] == "Merged", GATE_TIMEOUT, f"the gate merging {second}")
        assert pull(first)["status"] == "Open"
        assert not in_pipeline("gate", first)
        failed = review.buildsets("gate", first)
        assert failed and failed[0]["result"] == "FAILURE", failed
        assert review.results(failed[0]) == {"devinfra-lint": "FAILURE"}
        passed = review.buildsets("gate", second)
        assert passed[0]["result"] == "SUCCESS", passed
        assert passed[0]["first_build_start_time"] >= failed[0]["last_build_end_time"], (
            "second's passing gate run started before first failed: it was not re-tested without first")
        alice.git("fetch", "-q", "upstream", "master")
        merged = alice.git("log", "--format=%s", f"{before}..upstream/master")
        assert "Mark the mirror bench as touched by the gate test" in merged
        assert "Add a gate probe at the end" in merged
        assert "Add the same gate probe above main" not in merged
        review.close("bob", first)
    finally:
        review.restore(alice, before, [PROBE_FILE, OTHER_FILE], GATE_TIMEOUT)
