"""The caching benchmark's own run, kept working: a 10-turn review pays full price for almost none of its input
(the fake simulates the prompt cache as the API documents it). It broke once unseen, when the reviewer got an
output schema and its last answer stopped conforming."""

from __future__ import annotations

from pathlib import Path

import pytest
from benchmarks import caching

pytestmark = pytest.mark.anyio


async def test_a_ten_turn_run_reads_its_conversation_from_the_cache(tmp_path: Path) -> None:
    (tmp_path / "app.py").write_text("".join(f"def handler_{i}(request):\n    return 1\n" for i in range(200)))
    cached, before = await caching.one_run(tmp_path, True), await caching.one_run(tmp_path, False)
    assert cached["input_tokens"] <= 0.3 * before["input_tokens"], (cached, before)
    assert cached["cache_read_input_tokens"] > before["cache_read_input_tokens"]
