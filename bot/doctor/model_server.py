"""The model server's checks: the model exists and is not about to shut down, and the
server serves the API the chosen backend speaks (or which TUTOR_BACKEND to use instead).

Nothing is created: the backend's API is probed with a request at its root that creates
nothing (a list, or a create the API must refuse with 400), and a bare 404 there is a server
without that API, as the backends tell it at first use (bot.backends.openai_client).
"""

from __future__ import annotations

from datetime import UTC, date, datetime

import openai

from bot.backends.openai_client import is_missing_endpoint
from bot.doctor.results import CheckResult, ModelShutdown, Outcome, failed, passed, reason
from bot.settings import BackendKind, Settings

# A model that shuts down within this many days fails its check.
SHUTDOWN_WARNING_DAYS = 30
# A server serving at most this many models has them named when TUTOR_MODEL is not one.
MODELS_NAMED = 8
# One more metadata pair than the Conversations API takes: a create it must refuse.
METADATA_LIMIT = 16


async def check_model(
    settings: Settings, client: openai.AsyncOpenAI, *, today: date | None = None
) -> CheckResult:
    """The model exists at the server and does not shut down within 30 days."""
    name, model = "model", settings.tutor_model
    server = _server(settings)
    try:
        found = await client.models.retrieve(model)
    except openai.NotFoundError:
        return await _model_in_list(settings, client, server)
    except openai.APIStatusError as error:
        return failed(name, f"GET /models/{model} at {server}: {_status_said(error)}")
    except openai.APIConnectionError as error:
        return failed(name, f"cannot reach {server} ({reason(error.__cause__ or error)})")
    today = today or datetime.now(UTC).date()
    raw = _shutdown_field(found)
    shutdown = shutdown_date(raw)
    if shutdown is None:
        unreadable = f" (its shutdown_date {raw!r} is not a date)" if raw is not None else ""
        return passed(name, f"{model} is served by {server}; no shutdown announced{unreadable}")
    days_left = (shutdown - today).days
    notice = ModelShutdown(model, shutdown, days_left)
    if days_left > SHUTDOWN_WARNING_DAYS:
        return CheckResult(
            name,
            Outcome.PASSED,
            f"{model} is served by {server}; it shuts down on {shutdown.isoformat()} "
            f"(in {days_left} days)",
            notice,
        )
    advice = await suggest_model(client, model, today)
    when = (
        f"shut down on {shutdown.isoformat()}"
        if days_left < 0
        else f"shuts down on {shutdown.isoformat()}, in {days_left} days"
    )
    return CheckResult(name, Outcome.FAILED, f"{model} (TUTOR_MODEL) {when}: {advice}", notice)


async def _model_in_list(
    settings: Settings, client: openai.AsyncOpenAI, server: str
) -> CheckResult:
    """GET /models/{id} said 404: the model is unknown, or the server serves only the list."""
    name, model = "model", settings.tutor_model
    try:
        page = await client.models.list()
    except openai.NotFoundError:
        return failed(
            name,
            f"cannot check {model}: {server} answers 404 to GET /models/{model} and to "
            "GET /models (is OPENAI_BASE_URL right? it often ends in /v1)",
        )
    except openai.APIStatusError as error:
        return failed(name, f"GET /models at {server}: {_status_said(error)}")
    served = [entry.id for entry in page.data]
    if model in served:
        return passed(name, f"{model} is served by {server} (it announces no shutdown dates)")
    # A self-hosted server serves a few models: name them. OpenAI's list is too long for a line.
    offered = f"; it serves {', '.join(served)}" if 0 < len(served) <= MODELS_NAMED else ""
    return failed(name, f"{server} does not serve {model} (TUTOR_MODEL){offered}")


async def suggest_model(client: openai.AsyncOpenAI, model: str, today: date) -> str:
    """Advice naming the default model when the server has it with no shutdown near."""
    default = Settings.tutor_model
    generic = "set TUTOR_MODEL to a current model (the provider's deprecations page names one)"
    if default == model:
        return generic
    try:
        candidate = await client.models.retrieve(default)
    except openai.OpenAIError:
        return generic
    ends = shutdown_date(_shutdown_field(candidate))
    if ends is not None and (ends - today).days <= SHUTDOWN_WARNING_DAYS:
        return generic
    return f"set TUTOR_MODEL to a current model, such as {default}"


def _shutdown_field(model: object) -> object:
    """`shutdown_date` as sent: typed by recent SDKs, in `model_extra` for older ones."""
    value = getattr(model, "shutdown_date", None)
    if value is None:
        value = (getattr(model, "model_extra", None) or {}).get("shutdown_date")
    return value


def shutdown_date(value: object) -> date | None:
    """The documented "YYYY-MM-DD" (a full timestamp or epoch seconds are read too)."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return datetime.fromtimestamp(value, UTC).date()
    if isinstance(value, str):
        try:
            return date.fromisoformat(value.strip()[:10])
        except ValueError:
            return None
    return None


# The API each backend needs (probed by `serves_api`).
API_OF_BACKEND = {
    BackendKind.RESPONSES: "Conversations API",
    BackendKind.ASSISTANTS: "Assistants API",
    BackendKind.CHAT: "Chat Completions API",
}
# Which backend to suggest when the chosen one's API is missing, in order of preference.
FALLBACKS = (BackendKind.CHAT, BackendKind.RESPONSES, BackendKind.ASSISTANTS)


async def check_backend_api(settings: Settings, client: openai.AsyncOpenAI) -> CheckResult:
    """The server serves the API the chosen backend speaks; if not, which backend to use."""
    name, backend = "backend API", settings.backend
    api, server = API_OF_BACKEND[backend], _server(settings)
    try:
        served = await serves_api(client, backend, settings)
    except openai.APIStatusError as error:
        return failed(name, f"{api} at {server}: {_status_said(error)}")
    except openai.APIConnectionError as error:
        return failed(name, f"cannot reach {server} ({reason(error.__cause__ or error)})")
    if not served:
        instead = await _backend_instead(client, settings)
        return failed(
            name, f"{server} does not serve the {api} that TUTOR_BACKEND={backend} needs: {instead}"
        )
    said = f"{server} serves the {api} (TUTOR_BACKEND={backend})"
    if backend is BackendKind.ASSISTANTS and settings.assistant_id:
        try:
            await client.beta.assistants.retrieve(settings.assistant_id)
        except openai.NotFoundError:
            return failed(name, f"{said} but knows no assistant {settings.assistant_id} "
                          "(TUTOR_ASSISTANT_ID)")  # fmt: skip
        said += f", with the assistant {settings.assistant_id}"
    return passed(name, said)


async def serves_api(client: openai.AsyncOpenAI, backend: BackendKind, settings: Settings) -> bool:
    """True when the server has the API `backend` speaks; raises other errors (401, 5xx).

    Each probe is a request at the API's root that creates nothing: a list, or a create the
    API must refuse (400). A bare 404 there is a server without that API, as the backends
    tell it at first use (`is_missing_endpoint`).
    """
    try:
        if backend is BackendKind.RESPONSES:
            too_many = {f"k{n}": "doctor" for n in range(METADATA_LIMIT + 1)}
            created = await client.conversations.create(metadata=too_many)
            await client.conversations.delete(created.id)  # a lax server made one: remove it
        elif backend is BackendKind.ASSISTANTS:
            await client.beta.assistants.list(limit=1)
        else:
            await client.chat.completions.create(model=settings.tutor_model, messages=[])
    except openai.NotFoundError as error:
        # A 404 about something the request names (model_not_found) comes from the API.
        return not is_missing_endpoint(error)
    except (openai.BadRequestError, openai.UnprocessableEntityError):
        return True  # refused, as it must be: the API is there
    return True


async def _backend_instead(client: openai.AsyncOpenAI, settings: Settings) -> str:
    for other in FALLBACKS:
        if other is settings.backend:
            continue
        try:
            if await serves_api(client, other, settings):
                return f"set TUTOR_BACKEND={other} (it serves the {API_OF_BACKEND[other]})"
        except openai.OpenAIError:
            continue
    return "it serves none of the APIs the bot speaks; check OPENAI_BASE_URL (often …/v1)"


def _server(settings: Settings) -> str:
    return settings.openai_base_url or "OpenAI"


def _status_said(error: openai.APIStatusError) -> str:
    if error.status_code in (401, 403):
        return f"{error.status_code}, the server refused OPENAI_API_KEY"
    code = getattr(error, "code", None)
    return f"HTTP {error.status_code}" + (f" ({code})" if code else "")
