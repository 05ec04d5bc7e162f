"""The bot token scopes the bot needs: those manifest.yml asks for.

Kept in code because a deployed bot may not have manifest.yml beside it; a unit test holds
this list and the manifest's `oauth_config.scopes.bot` equal. `python -m bot doctor` checks
them against the scopes Slack says the token has (the `x-oauth-scopes` response header).
"""

from __future__ import annotations

REQUIRED_BOT_SCOPES: tuple[str, ...] = (
    "app_mentions:read",
    "assistant:write",
    "chat:write",
    "commands",
    "im:history",
    "channels:history",
    "groups:history",
    "im:read",
    "im:write",
    "files:read",
    "users:read",
)

# The response header in which Slack lists the scopes of the token a call was made with.
SCOPES_HEADER = "x-oauth-scopes"


def granted_scopes(header: str | None) -> frozenset[str] | None:
    """The scopes of Slack's `x-oauth-scopes` header ("a:b,c:d"); None when it was absent."""
    if header is None:
        return None
    return frozenset(scope.strip() for scope in header.split(",") if scope.strip())


def missing_scopes(granted: frozenset[str]) -> list[str]:
    """The required scopes the token lacks, in the manifest's order."""
    return [scope for scope in REQUIRED_BOT_SCOPES if scope not in granted]
