"""The Models API of the OpenAI stand-in: GET /models and GET /models/{id}.

Each model has OpenAI's documented fields (id, object, created, owned_by) and
`shutdown_date` ("YYYY-MM-DD", null when none is announced), which `doctor` reads. The
catalogue is configurable: tests add models, remove them, or give them a shutdown date.
"""

from __future__ import annotations

from aiohttp import web

from bot.local.openai_common import JSON, ApiError

# A few of OpenAI's models with the shutdown dates its deprecations page announces.
DEFAULT_MODELS: dict[str, str | None] = {
    "gpt-5.4-mini": None,
    "gpt-5.5": None,
    "gpt-5-mini": "2026-12-11",
    "gpt-5": "2026-12-11",
    "gpt-4.1-mini": "2027-01-14",
    "gpt-4o-mini": "2027-01-14",
}
CREATED = 1_773_705_600  # 2026-03-17, when the stand-in says every model was released
OWNER = "system"


def model_json(model_id: str, shutdown_date: str | None) -> JSON:
    return {
        "id": model_id,
        "object": "model",
        "created": CREATED,
        "owned_by": OWNER,
        "shutdown_date": shutdown_date,
    }


def model_not_found(model_id: str) -> ApiError:
    """OpenAI's answer for a model it does not have (or the key may not use)."""
    return ApiError(
        404,
        f"The model '{model_id}' does not exist or you do not have access to it.",
        code="model_not_found",
        param="model",
    )


class ModelsAPI:
    """`models` maps each model id to its shutdown date (None: none announced)."""

    def __init__(self, models: dict[str, str | None] | None = None) -> None:
        self.models: dict[str, str | None] = dict(DEFAULT_MODELS if models is None else models)

    def routes(self) -> list[web.RouteDef]:
        return [
            web.get("/v1/models", self.list_models),
            web.get("/v1/models/{model:.+}", self.get_model),
        ]

    async def list_models(self, request: web.Request) -> web.Response:
        data = [model_json(model_id, date) for model_id, date in self.models.items()]
        return web.json_response({"object": "list", "data": data})

    async def get_model(self, request: web.Request) -> web.Response:
        model_id = request.match_info["model"]
        if model_id not in self.models:
            raise model_not_found(model_id)
        return web.json_response(model_json(model_id, self.models[model_id]))
