"""Microsoft's ``azure-devops`` SDK on a connected session, for Python builders who script:
its clients sign in with the session's credentials (a PAT, or an Entra token renewed as it
nears expiry) and talk to the session's organization (the sandbox's with ``--sandbox``), so
there is no second sign-in and no token in the script. ``pip install 'adobot[sdk]'``; the
SDK is imported only here, when asked for.
"""
from __future__ import annotations

from typing import Any

from adobot.errors import InvalidInput
from adobot.sessions.session import Session

INSTALL = "pip install 'adobot[sdk]' (Microsoft's azure-devops package)"


def connection(session: Session) -> Any:
    """An ``azure.devops.connection.Connection`` to the session's organization, signed by the
    session's authorizer on every request."""
    try:
        from azure.devops.connection import Connection
        from msrest.authentication import Authentication
    except ImportError:
        raise InvalidInput("the SDK connection needs Microsoft's azure-devops package, which "
                           "is not installed", f"{INSTALL}.", field="session") from None

    class SessionCredentials(Authentication):  # type: ignore[misc]
        """msrest asks for a signed session before each request: the header is the session's
        current one, so a renewed Entra token is used as soon as it is renewed."""

        def __init__(self, authorizer: Any) -> None:
            super().__init__()
            self._authorizer = authorizer

        def signed_session(self, session: Any = None) -> Any:
            signed = super().signed_session(session)
            signed.headers["Authorization"] = self._authorizer.header().reveal()
            return signed

        def __repr__(self) -> str:
            return f"SessionCredentials(session {session.name!r})"

    return Connection(base_url=session.rest.base_url, creds=SessionCredentials(session.rest.auth))
