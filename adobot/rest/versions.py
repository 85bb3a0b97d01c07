"""REST API versions: what each route needs, and what the server speaks.

Azure DevOps Services speaks 7.1. Azure DevOps Server speaks less (Server 2022: 7.0; Server
2020: 6.0, where the Pipelines API exists only as a preview) and answers a higher version with
400 ``VssVersionOutOfRangeException`` naming the latest it supports. The client starts at 7.1,
learns the server's version from that answer once per connection, and asks every route for the
version string it needs on that server.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from adobot.errors import InvalidInput

Version = tuple[int, int]
LATEST: Version = (7, 1)
SERVERS = {(7, 0): "Azure DevOps Server 2022", (6, 0): "Azure DevOps Server 2020",
           (5, 1): "Azure DevOps Server 2019 Update 1", (5, 0): "Azure DevOps Server 2019"}
# "... The latest REST API version this server supports is 7.0."
_LATEST_SUPPORTED = re.compile(r"latest REST API version this server supports is (\d+)\.(\d+)")


def text(version: Version) -> str:
    return f"{version[0]}.{version[1]}"


def server_name(version: Version) -> str:
    return SERVERS.get(version, f"a server speaking REST API {text(version)}")


def latest_supported(message: str) -> Version | None:
    """The version a VssVersionOutOfRangeException names as the server's latest."""
    found = _LATEST_SUPPORTED.search(message)
    return (int(found.group(1)), int(found.group(2))) if found else None


@dataclass(frozen=True)
class Api:
    """What a route needs of the api-version: always a preview (``preview``), a preview on
    servers older than ``preview_before``, and absent before ``since``."""

    name: str = "the REST API"
    preview: bool = False
    preview_before: Version | None = None
    since: Version | None = None

    def version_for(self, server: Version) -> str:
        if self.since and server < self.since:
            raise InvalidInput(
                f"this step needs {self.name}, which {server_name(server)} "
                f"(REST API {text(server)}) does not have: it came with REST API "
                f"{text(self.since)} ({server_name(self.since)})",
                "Upgrade the server, or use Azure DevOps Services.", field="organization_url")
        preview = self.preview or (self.preview_before is not None and server < self.preview_before)
        return text(server) + ("-preview.1" if preview else "")


GENERAL = Api()
# connectionData is a preview API everywhere: a bare version is refused there.
PREVIEW = Api("the connection data API", preview=True)
# Pipelines and runs: a preview in Server 2020 (6.0), general from 7.0, absent before 6.0.
PIPELINES = Api("the Pipelines API", preview_before=(7, 0), since=(6, 0))
