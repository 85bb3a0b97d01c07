"""What the wiki actions share: the wiki a bot names (by default the project wiki), pages'
paths and links."""
from __future__ import annotations

from urllib.parse import quote

from adobot.actions.base import path_segment
from adobot.actions.references import wiki_in
from adobot.errors import AdobotError, NotFound
from adobot.sessions.session import Session


def wiki_name(session: Session, given: str | None) -> str:
    """The wiki's name or id; without one, the project wiki ("{project}.wiki", as the service
    names it when it is created)."""
    return wiki_in(session, given) if given else f"{session.project_name}.wiki"


def page_url(session: Session, wiki: str, path: str) -> str:
    return (f"{session.organization_url}/{path_segment(session.project_name)}/_wiki/wikis/"
            f"{path_segment(wiki)}?pagePath={quote(path, safe='')}")


def page_of_file(file: str) -> str:
    """A wiki file's path -> its page's path ("/Runbooks/Payment-failures.md" ->
    "/Runbooks/Payment failures"): '-' stands for a space, "%2D" for '-'."""
    parts = [p for p in file.removesuffix(".md").split("/") if p]
    return "/" + "/".join(p.replace("-", " ").replace("%2D", "-") for p in parts)


def explain_missing(error: AdobotError, session: Session, wiki: str, path: str) -> AdobotError:
    if not isinstance(error, NotFound):
        return error
    if error.details.get("typeKey") == "WikiPageNotFoundException":
        return error.derive(message=f"page {path!r} does not exist in wiki {wiki!r} (the service "
                                    f"said: {error.service_message})",
                            hint="Check the path; GetWikiPage of '/' lists the top pages.")
    if error.details.get("tfCode") == "TF200016":
        return error
    return error.derive(message=f"wiki {wiki!r} does not exist in project "
                                f"{session.project_name!r} (the service said: "
                                f"{error.service_message})",
                        hint="Give the wiki's name as the project's Wiki page shows it; the "
                             "project wiki is named {project}.wiki.")
