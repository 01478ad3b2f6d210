"""The agent loop: model turn, tool calls, repeat until the model ends its turn or the turn limit."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import anyio
from pydantic import BaseModel, ConfigDict

from subagents.definitions.spec import AgentSpec
from subagents.events import EventSink, RunEvent, discard
from subagents.messages import (
    ContentBlock,
    Message,
    ModelRequest,
    ServerToolSpec,
    TextBlock,
    ToolResultBlock,
    ToolSpec,
    ToolUseBlock,
    Usage,
)
from subagents.providers.base import ModelProvider
from subagents.structured import parse_output
from subagents.telemetry import chat_response, chat_span, tool_result, tool_span
from subagents.tools.base import ToolOutput

DEFAULT_MAX_TURNS = 20
DEFAULT_MAX_TOKENS = 8192
LAST_TURN_NOTE = (
    "Your next answer is your last turn: the turn limit is reached. Write your final report now, "
    "from what you have gathered, without calling tools."
)

RETRY_OUTPUT_NOTE = (
    "Your answer does not match the output format this task requires: {problem}. Answer again with only "
    "the JSON object, matching this JSON schema, and no text before or after it:\n{schema}"
)

SCHEMA_MISMATCH = "The answer does not match the agent's output schema"

MessageSink = Callable[[Sequence[Message]], Awaitable[None]]


class ToolRunner(Protocol):
    """What the loop needs from a toolbox: the specs to offer and a call that never raises."""

    @property
    def specs(self) -> tuple[ToolSpec, ...]: ...

    async def call(self, name: str, args: object) -> ToolOutput: ...

    def concurrent_safe(self, name: str) -> bool:
        """True when calls of this tool may run at the same time as other such calls (they only read)."""
        ...


class RunResult(BaseModel):
    model_config = ConfigDict(frozen=True)

    agent: str
    model: str
    report: str
    turns: int
    usage: Usage
    stop_reason: str  # the model's last stop reason, or max_turns when the limit cut the run short
    transcript: tuple[Message, ...]
    output: dict[str, Any] | None = None  # the answer as JSON, when the agent declares a schema and it matched
    output_warning: str | None = None  # why a declared schema did not match, after the one retry


@dataclass(frozen=True)
class RunLimits:
    max_turns: int = DEFAULT_MAX_TURNS
    max_tokens: int = DEFAULT_MAX_TOKENS
    temperature: float | None = None
    fallback_model: str | None = None


class Guard(Protocol):
    """Sees each model turn's usage; returns a reason to stop the run, or None to go on."""

    def add(self, model: str, usage: Usage) -> None: ...

    def exceeded(self) -> str | None: ...

    def allowance(self, model: str, wanted: int) -> int:
        """The output tokens the next turn may use, at most `wanted`."""
        ...


async def run_agent(
    spec: AgentSpec,
    conversation: Sequence[Message],
    *,
    model: str,
    provider: ModelProvider,
    tools: ToolRunner,
    limits: RunLimits,
    events: EventSink = discard,
    on_messages: MessageSink | None = None,
    guard: Guard | None = None,
) -> RunResult:
    """Run `spec` on `conversation` (which ends with a user turn) and return its report.

    `on_messages` sees every new message as it is added, so a store can keep the transcript
    even if the run is cancelled half way.
    """
    messages = list(conversation)
    usage = Usage()
    turn = 0
    stop_reason = "end_turn"
    report = ""
    schema = spec.options.output
    output: dict[str, Any] | None = None
    output_warning: str | None = None
    retried = False
    while turn < limits.max_turns:
        turn += 1
        await events(
            RunEvent(
                kind="model_call",
                turn=turn,
                max_turns=limits.max_turns,
                message=f"turn {turn}/{limits.max_turns}: {spec.name} is thinking",
            )
        )
        request = ModelRequest(
            model=model,
            system=spec.prompt,
            messages=tuple(messages),
            tools=tools.specs,
            server_tools=server_tools(tools),
            max_tokens=limits.max_tokens if guard is None else guard.allowance(model, limits.max_tokens),
            temperature=limits.temperature,
            fallback_model=limits.fallback_model,
            output_schema=schema,
        )
        with chat_span(request) as span:
            response = await provider.complete(request)
            chat_response(span, response)
        usage += response.usage
        stop_reason = response.stop_reason
        assistant = response.as_message()
        messages.append(assistant)
        if assistant.text.strip():
            report = assistant.text
        over_budget = _check(guard, response.model or model, response.usage)
        if stop_reason == "pause_turn" and not over_budget:
            # The API paused a long turn of its own tools (web search): send it back as is to let it go on.
            await _emit(on_messages, [assistant])
            continue
        if over_budget or not (stop_reason == "tool_use" and assistant.tool_uses):
            if over_budget:
                await _emit(on_messages, [assistant])
                stop_reason, report = "budget_exceeded", _budget_note(report, over_budget)
                break
            if schema is not None:
                output, problem = parse_output(schema, assistant.text)
                if problem is not None and not retried and turn < limits.max_turns:
                    retried = True  # once: the model sees what was wrong and answers again
                    note = _retry_note(problem, schema)
                    messages.append(note)
                    await _emit(on_messages, [assistant, note])
                    continue
                output_warning = None if problem is None else f"{SCHEMA_MISMATCH}: {problem}"
            await _emit(on_messages, [assistant])
            break
        results = await _run_tools(assistant.tool_uses, tools, events, turn, limits.max_turns)
        if turn == limits.max_turns - 1:  # the next model turn is the last one
            results.append(TextBlock(text=LAST_TURN_NOTE))
        tool_turn = Message(role="user", content=tuple(results))
        messages.append(tool_turn)
        await _emit(on_messages, [assistant, tool_turn])
    else:
        stop_reason = "max_turns"
        report = _cut_short(report, limits.max_turns)
        output_warning = f"{SCHEMA_MISMATCH}: the run stopped at its turn limit first" if schema else None
    return RunResult(
        agent=spec.name,
        model=model,
        report=report.strip(),
        turns=turn,
        usage=usage,
        stop_reason=stop_reason,
        transcript=tuple(messages[len(conversation) :]),
        output=output,
        output_warning=output_warning,
    )


def _retry_note(problem: str, schema: dict[str, Any]) -> Message:
    text = RETRY_OUTPUT_NOTE.format(problem=problem, schema=json.dumps(schema, separators=(",", ":")))
    return Message(role="user", content=(TextBlock(text=text),))


def server_tools(tools: ToolRunner) -> tuple[ServerToolSpec, ...]:
    """Tools the model's API runs itself (web search, web fetch), if the runner offers any: sent with the
    request, never called here. Optional, so a runner with only its own tools needs nothing more."""
    specs: tuple[ServerToolSpec, ...] = getattr(tools, "server_tools", ())
    return specs


def _check(guard: Guard | None, model: str, usage: Usage) -> str | None:
    if guard is None:
        return None
    guard.add(model, usage)
    return guard.exceeded()


def _budget_note(report: str, reason: str) -> str:
    note = f"NOTE: the run was stopped before finishing: {reason}. This report is partial."
    return f"{report.strip()}\n\n{note}" if report.strip() else note


async def _emit(sink: MessageSink | None, messages: list[Message]) -> None:
    if sink is not None:
        await sink(messages)


async def _run_tools(
    calls: Sequence[ToolUseBlock], tools: ToolRunner, events: EventSink, turn: int, max_turns: int
) -> list[ContentBlock]:
    """Run one turn's tool calls. Models often ask for several Reads at once: a run of calls that only
    read goes concurrently; a call that changes something waits for the ones before it and runs alone.
    Results keep the order of the calls."""
    outputs: list[ToolOutput | None] = [None] * len(calls)
    offered = {spec.name for spec in tools.specs}

    async def one(index: int) -> None:
        call = calls[index]
        with tool_span(call.name, call.id, call.input, known=call.name in offered) as span:
            output = outputs[index] = await tools.call(call.name, call.input)
            tool_result(span, output.text, is_error=output.is_error)

    for batch in _batches(calls, tools):
        for i in batch:
            message = f"turn {turn}/{max_turns}: {describe_call(calls[i])}"
            await events(RunEvent(kind="tool_call", turn=turn, max_turns=max_turns, message=message))
        if len(batch) == 1:
            await one(batch[0])
            continue
        async with anyio.create_task_group() as tg:
            for i in batch:
                tg.start_soon(one, i)
    done = [output or ToolOutput(text="The tool did not run.", is_error=True) for output in outputs]
    return [
        ToolResultBlock(tool_use_id=call.id, content=output.text, is_error=output.is_error)
        for call, output in zip(calls, done, strict=True)
    ]


def _batches(calls: Sequence[ToolUseBlock], tools: ToolRunner) -> list[list[int]]:
    """Call indexes grouped so that neighbouring read-only calls share a batch."""
    batches: list[list[int]] = []
    for i, call in enumerate(calls):
        if batches and tools.concurrent_safe(call.name) and tools.concurrent_safe(calls[batches[-1][-1]].name):
            batches[-1].append(i)
        else:
            batches.append([i])
    return batches


def describe_call(call: ToolUseBlock) -> str:
    """`Grep "password" in src/`: short enough for a progress line."""
    args = call.input
    keys = ("pattern", "file_path", "path", "command", "subagent_type")
    main = next((args[k] for k in keys if isinstance(args.get(k), str)), None)
    text = call.name if main is None else f"{call.name} {json.dumps(main)[:80]}"
    where = args.get("path") if "pattern" in args and isinstance(args.get("path"), str) else None
    return f"{text} in {where[:60]}" if where else text


def _cut_short(report: str, max_turns: int) -> str:
    note = (
        f"NOTE: the agent stopped at its {max_turns}-turn limit before finishing. "
        "Continue the run, or raise maxTurns in the agent file, for a complete answer."
    )
    return f"{report.strip()}\n\n{note}" if report.strip() else note
