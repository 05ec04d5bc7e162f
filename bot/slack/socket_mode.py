"""Socket Mode: Bolt's handler, with payloads that are not what Slack sends kept from Bolt.

Bolt answers a malformed payload with a traceback and no ack, and Slack would send it again
and again. It is acked instead (delivering it again would not mend it) and logged in one
line: the same shape checks as over HTTP (request_check), without the signature, which
Socket Mode does not have. An envelope whose payload is no object at all is dropped by
slack_sdk before it gets here (it logs that itself).
"""

from __future__ import annotations

import logging

from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
from slack_sdk.socket_mode.aiohttp import SocketModeClient
from slack_sdk.socket_mode.request import SocketModeRequest
from slack_sdk.socket_mode.response import SocketModeResponse

from bot.slack.request_check import BadPayload, check_payload

log = logging.getLogger(__name__)


class CheckedSocketModeHandler(AsyncSocketModeHandler):
    async def handle(self, client: SocketModeClient, req: SocketModeRequest) -> None:
        try:
            check_payload(req.payload)
        except BadPayload as error:
            log.warning("refused a Socket Mode %s envelope: %s", req.type, error)
            await client.send_socket_mode_response(SocketModeResponse(envelope_id=req.envelope_id))
            return
        await super().handle(client, req)
