"""A strict reader of node exporter textfiles, for the tests of the scripts that write them."""

from __future__ import annotations

import re


def parse(text: str) -> dict[str, dict[frozenset, float]]:
    """The textfile's samples by metric name, keyed by their label pairs.

    Fails on a line that is not a sample or a comment, on a metric without its
    HELP and TYPE before it, and on a sample given twice."""
    described: dict[str, set[str]] = {}
    samples: dict[str, dict[frozenset, float]] = {}
    for line in text.splitlines():
        comment = re.match(r"# (HELP|TYPE) (\w+) (.+)$", line)
        if comment:
            described.setdefault(comment.group(2), set()).add(comment.group(1))
            continue
        sample = re.match(r"(\w+)(?:\{(.*)\})? (\S+)$", line)
        assert sample, f"not a sample: {line!r}"
        name, labels, value = sample.groups()
        assert described.get(name) == {"HELP", "TYPE"}, f"{name} has no HELP and TYPE before it"
        pairs = frozenset(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', labels or ""))
        assert pairs not in samples.setdefault(name, {}), f"{name}{{{labels}}} twice"
        samples[name][pairs] = float(value)
    return samples


def value(samples: dict[str, dict[frozenset, float]], name: str, **labels: str) -> float:
    return samples[name][frozenset(labels.items())]
