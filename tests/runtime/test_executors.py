"""Executors: the platform over HTTP (MockTransport), selection by environment, the local sink."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from planner_operator.core.settings import Settings
from planner_operator.errors import (
    AuthError,
    NotFound,
    PermanentError,
    RetryableError,
    SourceError,
    UnknownOutcome,
)
from planner_operator.runtime.executors import actions
from planner_operator.runtime.executors import select as executor_select
from planner_operator.runtime.executors.base import Executors
from planner_operator.runtime.executors.http import HttpExecutor
from planner_operator.runtime.executors.local import LocalOutbox
from planner_operator.runtime.executors.workflows import WorkflowRunner

CONTEXT = {"run_key": "msg_123", "key": "a/triggers/t"}


def platform(handler: Callable[[httpx.Request], httpx.Response], **kw: Any) -> HttpExecutor:
    return HttpExecutor(client=httpx.Client(transport=httpx.MockTransport(handler)), **kw)


def test_chat_posts_to_the_workforce_path_with_an_idempotency_key() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(201, json={"threadId": "t-42"})

    executor = platform(handler, platform_url="https://agents.example.com/")
    thread = executor.start_thread(agent="job-application-agent", message="hi", context=CONTEXT)
    assert thread == "t-42"
    [request] = seen
    assert str(request.url) == "https://agents.example.com/api/workforce/job-application-agent/chat"
    assert request.headers["idempotency-key"] == "msg_123"
    body = json.loads(request.content)
    assert body["message"] == "hi" and body["agentId"] == "job-application-agent"
    assert body["newThread"] is True and body["context"]["run_key"] == "msg_123"


def test_chat_url_override_and_custom_path_shape() -> None:
    urls: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        urls.append(str(request.url))
        return httpx.Response(200, json={"thread": {"id": "x"}})

    platform(handler, chat_url="http://p.local/chat/{agentId}").start_thread(
        agent="a b", message="m", context=CONTEXT
    )
    platform(
        handler, platform_url="http://p.local", chat_path="/v2/{agentId}/threads"
    ).start_thread(agent="a", message="m", context=CONTEXT)
    assert urls == ["http://p.local/chat/a%20b", "http://p.local/v2/a/threads"]


@pytest.mark.parametrize(
    ("status", "headers", "error", "retry_after"),
    [
        (429, {"retry-after": "7"}, RetryableError, 7.0),
        (503, {}, RetryableError, None),
        (409, {}, RetryableError, None),
        (401, {}, AuthError, None),
        (404, {}, NotFound, None),
        (422, {}, PermanentError, None),
    ],
)
def test_http_errors_become_typed_errors(
    status: int, headers: dict[str, str], error: type[Exception], retry_after: float | None
) -> None:
    executor = platform(lambda r: httpx.Response(status, headers=headers), platform_url="http://p")
    with pytest.raises(error) as caught:
        executor.start_thread(agent="a", message="m", context=CONTEXT)
    if isinstance(caught.value, RetryableError):
        assert caught.value.retry_after == retry_after
    assert not isinstance(caught.value, RetryableError) or error is RetryableError


def test_retry_after_as_an_http_date() -> None:
    when = format_datetime(datetime.now(UTC) + timedelta(seconds=120), usegmt=True)
    executor = platform(
        lambda r: httpx.Response(429, headers={"retry-after": when}), platform_url="http://p"
    )
    with pytest.raises(RetryableError) as caught:
        executor.start_thread(agent="a", message="m", context=CONTEXT)
    assert caught.value.retry_after == pytest.approx(120, abs=3)


def test_timeouts_are_unknown_outcomes_and_urls_lose_their_query() -> None:
    def timeout(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("slow", request=request)

    def refused(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    with pytest.raises(UnknownOutcome) as caught:
        platform(timeout, chat_url="http://p/chat?token=SECRET").start_thread(
            agent="a", message="m", context=CONTEXT
        )
    assert "SECRET" not in str(caught.value)
    with pytest.raises(RetryableError):
        platform(refused, workflow_url="http://p/wf").run(workflow="w", input={}, context=CONTEXT)


def test_an_answer_without_a_thread_id_is_permanent() -> None:
    executor = platform(lambda r: httpx.Response(200, json={"ok": True}), platform_url="http://p")
    with pytest.raises(PermanentError, match="thread id"):
        executor.start_thread(agent="a", message="m", context=CONTEXT)


def test_unconfigured_calls_fail_permanently() -> None:
    executor = HttpExecutor()
    with pytest.raises(PermanentError):
        executor.start_thread(agent="a", message="m", context=CONTEXT)
    with pytest.raises(PermanentError):
        executor.run(workflow="w", input={}, context=CONTEXT)


def settings_for(tmp_path: Path) -> Settings:
    return Settings.resolve(state_dir=tmp_path, env={})


def test_from_env_defaults_to_the_local_sink_and_local_workflows(tmp_path: Path) -> None:
    executors = executor_select.from_env(settings_for(tmp_path), {})
    assert isinstance(executors.chat, LocalOutbox)
    assert isinstance(executors.workflow, WorkflowRunner)
    prepared = actions.Prepared("chat", "agent-1", message="hello")
    result = actions.execute(prepared, executors, context={"run_key": "k1"})
    assert result["sink"] == "local"  # run history never passes it off as a platform thread
    again = actions.execute(prepared, executors, context={"run_key": "k1"})
    assert again == result
    [thread] = executors.chat.threads()
    assert thread["message"] == "hello"


def test_from_env_uses_the_platform_when_configured(tmp_path: Path) -> None:
    env = {"PLANNER_PLATFORM_URL": "https://agents.example.com", "PLANNER_WORKFLOW_URL": "http://w"}
    executors = executor_select.from_env(settings_for(tmp_path), env)
    assert isinstance(executors.chat, HttpExecutor)
    assert executors.chat.chat_url == "https://agents.example.com/api/workforce/{agentId}/chat"
    assert isinstance(executors.workflow, WorkflowRunner)
    assert executors.workflow.fallback is not None  # the shipped examples defer to the platform
    with pytest.raises(SourceError, match="not a number"):
        executor_select.from_env(settings_for(tmp_path), {**env, "PLANNER_EXECUTOR_TIMEOUT": "x"})


def test_outbox_journal_returns_the_first_result(tmp_path: Path) -> None:
    with LocalOutbox(tmp_path / "o.db") as outbox:
        assert outbox.workflow_result("k") == (False, None)
        first = outbox.record_workflow(
            workflow="w", input={}, context={"run_key": "k"}, result={"n": 1}
        )
        second = outbox.record_workflow(
            workflow="w", input={}, context={"run_key": "k"}, result={"n": 2}
        )
        assert first == second == {"n": 1}
        assert outbox.workflow_result("k") == (True, {"n": 1})
        queued = outbox.run(workflow="w", input={"a": 1}, context={"run_key": "q"})
        assert queued["status"] == "queued"


def test_execute_without_a_sink_label_keeps_the_old_shape() -> None:
    class Plain:
        def start_thread(self, *, agent: str, message: str, context: Any) -> str:
            return "t"

        def run(self, *, workflow: str, input: Any, context: Any) -> Any:
            return {"ok": 1}

    plain = Plain()
    result = actions.execute(
        actions.Prepared("chat", "a", message="m"),
        Executors(chat=plain, workflow=plain),
        context={},
    )
    assert result == {"thread_id": "t"}
