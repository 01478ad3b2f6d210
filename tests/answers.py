"""Answers that match the bundled agents' output schemas, for scripting the fake model."""

from __future__ import annotations

import json
from collections.abc import Sequence


def review_json(reviewed: str = "No findings.", findings: Sequence[dict[str, str]] = ()) -> str:
    """A security-reviewer answer; `reviewed` is its summary's first field."""
    return json.dumps(
        {
            "findings": list(findings),
            "also_noted": [],
            "summary": {
                "reviewed": reviewed,
                "result": f"0 critical, {len(findings)} high, 0 medium, 0 low",
                "fix_first": "nothing urgent",
                "not_covered": "runtime configuration",
            },
        }
    )


def route_json(route: str = "none", confidence: float = 0.9, reason: str = "Because.", task: str = "Do it.") -> str:
    """A router answer."""
    return json.dumps({"route": route, "confidence": confidence, "reason": reason, "task": task})


def verdict_json(verdict: str = "A", labels: Sequence[str] = ("A", "B"), factor: str = "Evidence.") -> str:
    """A debate-judge answer scoring each of `labels`."""
    scores = [{"label": label, "correctness": 3, "evidence": 3, "risk": 3, "cost": 3} for label in labels]
    return json.dumps(
        {"verdict": verdict, "scores": scores, "decisive_factor": factor, "reasoning": "Checked.", "claims_checked": []}
    )


def grade_json(passed: bool, score: int = 5, feedback: str = "Cite the line.") -> str:
    """A rubric-grader answer."""
    return json.dumps({"pass": passed, "score": score, "feedback": feedback})
