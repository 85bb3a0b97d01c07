"""Action names -> modules, imported only when an action is used."""
from __future__ import annotations

import difflib
import importlib

from adobot.actions.base import Action
from adobot.errors import InvalidBot

_MODULES = {
    "Connect": "adobot.actions.connect",
    "ListRepos": "adobot.actions.list_repos",
    "CreateRepo": "adobot.actions.create_repo",
    "PushFiles": "adobot.actions.push_files",
    "CreatePipeline": "adobot.actions.create_pipeline",
    "QueueRun": "adobot.actions.queue_run",
    "CreateWorkItem": "adobot.actions.create_work_item",
    "ListRuns": "adobot.actions.list_runs",
    "ListCommits": "adobot.actions.list_commits",
    "ListFiles": "adobot.actions.list_files",
    "GetFile": "adobot.actions.get_file",
    "SearchCode": "adobot.actions.search_code",
    "GetWikiPage": "adobot.actions.get_wiki_page",
    "SearchWiki": "adobot.actions.search_wiki",
    "CreatePullRequest": "adobot.actions.create_pull_request",
    "QueryWorkItems": "adobot.actions.query_work_items",
    "UpdateWorkItem": "adobot.actions.update_work_item",
    "InvokeApi": "adobot.actions.invoke_api",
    "Disconnect": "adobot.actions.disconnect",
    "RunBot": "adobot.actions.run_bot",
    "ReadCsv": "adobot.actions.read_csv",
}


def names() -> list[str]:
    return list(_MODULES)


def get(name: object) -> Action:
    module = _MODULES.get(name) if isinstance(name, str) else None
    if module is None:
        close = difflib.get_close_matches(str(name), names(), n=1, cutoff=0.5)
        raise InvalidBot(f"unknown action {name!r}",
                         f"Did you mean {close[0]!r}?" if close
                         else f"Known actions: {', '.join(names())} (`adobot actions`).",
                         field="action")
    return importlib.import_module(module).ACTION


def all_actions() -> list[Action]:
    return [get(name) for name in names()]
