"""The routes the sandbox serves (7.1), one module per resource, each route with the scopes
the real service requires. ``ROUTER`` answers every Azure DevOps route; ``admin`` holds the
sandbox's own."""
from __future__ import annotations

from adobot.sandbox.routes import admin, core, git, pipelines, search, wiki, work_items
from adobot.sandbox.routing import Answer, HttpRequest, Router
from adobot.sandbox.state import SandboxState

ROUTER = Router(core.router, git.router, pipelines.router, work_items.router,
                wiki.router, search.router)


def app(state: SandboxState, request: HttpRequest) -> Answer:
    return admin.sign_in(request) or ROUTER.answer(state, request)
