"""`--model fake`: the eval on the package's fake Messages API, answered by the responder the eval file names.

This tests the harness (expectations, repeats, statistics, compare) in CI, with no key and at $0; it says
nothing about the prompt, which only a real model can judge.
"""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Callable
from pathlib import Path

from subagents.budget import Price, PriceTable
from subagents.errors import ConfigError
from subagents.evals.judge import is_judge_request, offline_judge
from subagents.providers.fake_server import RecordedRequest, Reply

FAKE_MODEL = "subagents-fake"
DEFAULT_RESPONDER = "subagents.providers.demo_model:demo_responder"
Responder = Callable[[RecordedRequest], Reply]


class FreePrices(PriceTable):
    """Every model costs nothing: the fake answers, whatever model an agent names."""

    def price(self, model: str) -> Price | None:
        return Price(input=0, output=0, cache_write=0, cache_read=0)


def load_responder(reference: str | None, base: Path) -> Responder:
    """`module:function`, or `file.py:function` beside the eval file: the function that answers the agent."""
    target = reference or DEFAULT_RESPONDER
    where, sep, name = target.rpartition(":")
    if not sep or not where or not name.isidentifier():
        raise ConfigError(f"fake_responder {target!r} must look like module:function or file.py:function")
    try:
        module = _module(where, base)
    except ConfigError:
        raise
    except Exception as exc:  # the user's module failed on import: say so, not a traceback
        raise ConfigError(f"fake_responder {target!r} could not be imported: {type(exc).__name__}: {exc}") from None
    function = getattr(module, name, None)
    if not callable(function):
        raise ConfigError(f"fake_responder {target!r}: {where} has no function {name!r}")
    return function  # type: ignore[no-any-return]


def _module(where: str, base: Path) -> object:
    if not where.endswith(".py"):
        return importlib.import_module(where)
    path = (base / where).resolve()
    if not path.is_file():
        raise ConfigError(f"fake_responder file {where!r} is not beside the eval file (looked for {path})")
    spec = importlib.util.spec_from_file_location(f"subagents_eval_responder_{path.stem}", path)
    if spec is None or spec.loader is None:
        raise ConfigError(f"fake_responder file {path} cannot be loaded as Python")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def offline_script(responder: Responder) -> Responder:
    """The agent's requests go to its responder; the judge's to the offline judge."""

    def answer(request: RecordedRequest) -> Reply:
        return offline_judge(request) if is_judge_request(request) else responder(request)

    return answer
