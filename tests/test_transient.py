"""Retries: only transient failures are retried, and the Prefect tasks use that rule."""

from __future__ import annotations

import pytest
from elastic_transport import ApiResponseMeta, HttpHeaders, NodeConfig
from elasticsearch import ApiError
from elasticsearch import ConnectionError as EsConnectionError

from infra.errors import SearchError, SearchUnavailableError
from infra.leases import LeaseTimeoutError
from infra.registry import RegistryBusyError, RegistryError
from infra.transient import is_transient
from parsers.errors import InputError


def _api_error(status: int) -> ApiError:
    meta = ApiResponseMeta(status, "1.1", HttpHeaders(), 0.01, NodeConfig("http", "127.0.0.1", 9200))
    return ApiError("x", meta, {})


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (ConnectionResetError("reset"), True),
        (TimeoutError(), True),
        (EsConnectionError("refused"), True),
        (SearchUnavailableError("Elasticsearch at http://x is unreachable"), True),
        (SearchError("invalid owner id 'a b'"), False),  # a wrong setting: same answer every try
        (LeaseTimeoutError("persona-x is held by another run"), True),
        (RegistryBusyError("aliases.json: too many concurrent alias moves, try again"), True),
        (RegistryError("o1/엄마/text has no version 9"), False),
        (_api_error(429), True),
        (_api_error(503), True),
        (_api_error(400), False),
        (_api_error(404), False),
        (InputError("x.txt", "not a recognised KakaoTalk export"), False),
        (ValueError("bad"), False),
    ],
)
def test_transient_classification(exc: BaseException, expected: bool) -> None:
    assert is_transient(exc) is expected


def test_google_errors_by_status() -> None:
    from google.api_core import exceptions as g

    assert is_transient(g.ServiceUnavailable("down")) is True  # type: ignore[no-untyped-call]
    assert is_transient(g.TooManyRequests("slow down")) is True  # type: ignore[no-untyped-call]
    assert is_transient(g.PreconditionFailed("generation")) is False  # type: ignore[no-untyped-call]
    assert is_transient(g.Forbidden("no")) is False  # type: ignore[no-untyped-call]


@pytest.mark.integration
@pytest.mark.usefixtures("prefect_api")
def test_prefect_tasks_retry_transient_errors_only() -> None:
    from prefect import flow, task

    from tasks.runs.policy import retry_if_transient

    calls = {"flaky": 0, "bad": 0}

    @task(retries=3, retry_delay_seconds=0, retry_condition_fn=retry_if_transient)
    def flaky() -> str:
        calls["flaky"] += 1
        if calls["flaky"] < 3:
            raise ConnectionResetError("connection reset by peer")
        return "ok"

    @task(retries=3, retry_delay_seconds=0, retry_condition_fn=retry_if_transient)
    def bad_input() -> None:
        calls["bad"] += 1
        raise InputError("x.txt", "not a recognised KakaoTalk export")

    @flow
    def run() -> str:
        return flaky()

    @flow
    def run_bad() -> None:
        bad_input()

    assert run() == "ok" and calls["flaky"] == 3
    with pytest.raises(InputError):
        run_bad()
    assert calls["bad"] == 1  # bad input: no retry
