"""Streamed creates against servers that do not stream: the run is still followed."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiohttp import web

from bot.backends.base import BackendError, UserMessage
from bot.backends.openai_client import make_client
from bot.backends.responses import ResponsesBackend


@pytest.fixture
async def plain_server() -> AsyncIterator[tuple[str, list[dict[str, object]]]]:
    """POST /v1/responses answers with JSON even when asked to stream (or with junk)."""
    bodies: list[dict[str, object]] = []

    async def create(request: web.Request) -> web.Response:
        body = await request.json()
        bodies.append(body)
        turn = body.get("metadata", {}).get("turn_id")
        if turn == "no-streams" and body.get("stream"):
            error = {"message": "Unknown parameter: 'stream'.", "param": "stream"}
            return web.json_response({"error": error}, status=400)
        if turn == "too-long":
            error = {"message": "Your input exceeds the context window.", "param": "input"}
            return web.json_response({"error": error}, status=400)
        if turn == "junk":
            return web.Response(text="not json", content_type="application/json")
        return web.json_response({"id": "resp_plain", "object": "response", "status": "queued"})

    app = web.Application()
    app.add_routes([web.post("/v1/responses", create)])
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield f"http://127.0.0.1:{port}/v1", bodies
    finally:
        await runner.cleanup()


@pytest.fixture
async def streaming_backend(
    plain_server: tuple[str, list[dict[str, object]]],
) -> AsyncIterator[ResponsesBackend]:
    client = make_client(api_key="sk-test", base_url=plain_server[0], timeout=5, max_retries=0)
    backend = ResponsesBackend(
        client, model="m", instructions="i", max_output_tokens=10, stream=True
    )
    yield backend
    await backend.close()


async def test_a_json_reply_to_a_streamed_create_gives_the_run_id(
    plain_server: tuple[str, list[dict[str, object]]], streaming_backend: ResponsesBackend
) -> None:
    backend, bodies = streaming_backend, plain_server[1]
    assert await backend.start_run("conv_1", UserMessage("Hi", "turn_1")) == "resp_plain"
    assert bodies[0]["stream"] is True
    with pytest.raises(BackendError):
        await backend.start_run("conv_1", UserMessage("Hi", "junk"))


async def test_a_server_that_refuses_stream_gets_plain_creates_from_then_on(
    plain_server: tuple[str, list[dict[str, object]]], streaming_backend: ResponsesBackend
) -> None:
    backend, bodies = streaming_backend, plain_server[1]
    assert await backend.start_run("conv_1", UserMessage("Hi", "no-streams")) == "resp_plain"
    assert await backend.start_run("conv_1", UserMessage("Hi", "no-streams")) == "resp_plain"
    assert [body.get("stream") for body in bodies] == [True, None, None]


async def test_a_400_about_something_else_keeps_streaming_on(
    plain_server: tuple[str, list[dict[str, object]]], streaming_backend: ResponsesBackend
) -> None:
    backend, bodies = streaming_backend, plain_server[1]
    with pytest.raises(BackendError):
        await backend.start_run("conv_1", UserMessage("Hi", "too-long"))
    assert await backend.start_run("conv_1", UserMessage("Hi", "turn_2")) == "resp_plain"
    assert [body.get("stream") for body in bodies] == [True, True]
