"""From four test results to one verdict: supported, refuted or inconclusive, with the reason.

Refuted: any test failed (a claim that fails once is falsified, Popper 1935 via the position
paper §3.2). Supported: all four passed. Inconclusive: nothing failed, but some test could not
be run or lacked evidence; the reason names which, so the next step is clear. A hypothesis that
names no confounds or no interventions can therefore never be "supported".
"""

from __future__ import annotations

from typing import Any

TESTS = ("in_sample", "held_out", "confound", "intervention")
LABELS = {"in_sample": "in-sample", "held_out": "held-out", "confound": "confound", "intervention": "intervention"}


def decide(tests: dict[str, dict[str, Any]]) -> tuple[str, str]:
    """(status, reason) from the tests' statuses (pass / fail / inconclusive / not_run)."""
    failed = [t for t in TESTS if tests[t]["status"] == "fail"]
    if failed:
        return "refuted", "failed " + "; ".join(f"{LABELS[t]}: {tests[t]['detail']}" for t in failed)
    open_ = [t for t in TESTS if tests[t]["status"] != "pass"]
    if open_:
        return "inconclusive", "no failure, but not decided by " + "; ".join(
            f"{LABELS[t]} ({tests[t]['status']}): {tests[t]['detail']}" for t in open_)
    return "supported", "passed " + "; ".join(f"{LABELS[t]}: {tests[t]['detail']}" for t in TESTS)
