"""Organization URLs: which forms are accepted, and the base URL that API calls start from."""
from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import urlsplit

from adobot.errors import InvalidInput

ORGANIZATION_NAME = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,48}[A-Za-z0-9])?$")
# Azure DevOps Server collections allow more than cloud organizations; refuse only what would
# break the URL or the service's own naming rules.
COLLECTION_NAME = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9 ._-]{0,62}[A-Za-z0-9_])?$")
HOSTNAME = re.compile(r"^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$")

FIELD = "organization_url"
FORMS = ("https://dev.azure.com/{organization}, https://{organization}.visualstudio.com, "
         "or http(s)://host[:port]/{collection} or http(s)://host[:port]/tfs/{collection} for "
         "Azure DevOps Server (plain http only on localhost, unless the run allows it)")
PLAIN_HTTP_OPTION = "--allow-plain-http"


@dataclass(frozen=True)
class OrganizationUrl:
    """A validated organization: its name and the base URL that every API route starts from."""

    name: str
    base_url: str
    kind: str  # "cloud", "legacy" (*.visualstudio.com) or "server"

    def __str__(self) -> str:
        return self.base_url

    def area(self, host: str) -> "OrganizationUrl":
        """The organization on one of the service's other hosts: ``almsearch`` (Code, Wiki
        and Work Item Search) or ``vssps`` (identities). Azure DevOps Server serves every area
        on its own host."""
        if self.kind == "cloud":
            return OrganizationUrl(self.name, f"https://{host}.dev.azure.com/{self.name}", self.kind)
        if self.kind == "legacy":
            return OrganizationUrl(self.name, f"https://{self.name}.{host}.visualstudio.com",
                                   self.kind)
        return self

    @property
    def clear_text(self) -> bool:
        """Plain http to a host that is not this machine: a token would cross the network."""
        host = urlsplit(self.base_url).hostname or ""
        return self.base_url.startswith("http://") and not is_loopback(host)


def is_loopback(host: str) -> bool:
    import ipaddress  # only for hosts that are not dev.azure.com: kept off the cold path

    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _bad(url_for_message: str, why: str) -> InvalidInput:
    return InvalidInput(f"organization_url {url_for_message!r} is not valid: {why}",
                        f"Use one of: {FORMS}.", field=FIELD)


def _organization(name: str, url: str) -> str:
    if not ORGANIZATION_NAME.match(name):
        raise _bad(url, f"{name!r} is not a valid organization name (1-50 letters, digits and "
                   "hyphens, starting and ending with a letter or digit)")
    return name


def parse_organization_url(raw: object, *, allow_plain_http: bool = False) -> OrganizationUrl:
    """The organization a URL names; plain http to another host only with ``allow_plain_http``
    (the person running the bot allows it explicitly)."""
    if not isinstance(raw, str) or not raw.strip():
        raise InvalidInput("organization_url is required and must be text", f"Use one of: {FORMS}.",
                           field=FIELD)
    text = raw.strip()
    if any(ord(ch) < 32 or ch.isspace() for ch in text):
        raise _bad(text, "it contains spaces or control characters")
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError as exc:
        raise _bad(text, f"it cannot be parsed ({exc})") from None
    if parts.username is not None or parts.password is not None:
        # Never echo credentials that were pasted into the URL.
        raise _bad(f"{parts.scheme}://***@{parts.hostname}", "it carries credentials; "
                   "give the token in personal_access_token instead")
    if parts.scheme not in ("http", "https"):
        raise _bad(text, "it must start with https://")
    if parts.query or parts.fragment:
        raise _bad(text, "it must not have a query (?...) or a fragment (#...)")
    host = (parts.hostname or "").lower()
    if not host:
        raise _bad(text, "it has no host name")
    segments = [s for s in parts.path.split("/") if s]
    if parts.scheme == "http" and not allow_plain_http and not is_loopback(host):
        raise _bad(text, "plain http is allowed only for localhost, so a token never crosses "
                   "a network in clear text by accident; use https (or, for an Azure DevOps "
                   f"Server that only speaks http, run with {PLAIN_HTTP_OPTION})")

    if host == "dev.azure.com":
        if port not in (None, 443):
            raise _bad(text, "dev.azure.com takes no port")
        if len(segments) != 1:
            raise _bad(text, "it must be https://dev.azure.com/{organization}"
                       + (" without the project or more; give the project in `project`"
                          if len(segments) > 1 else ""))
        return OrganizationUrl(_organization(segments[0], text),
                               f"https://dev.azure.com/{segments[0]}", "cloud")

    if host.endswith(".visualstudio.com"):
        org = host[: -len(".visualstudio.com")]
        if "." in org or not org:
            raise _bad(text, "it must be https://{organization}.visualstudio.com")
        if port not in (None, 443):
            raise _bad(text, "visualstudio.com takes no port")
        if segments not in ([], ["DefaultCollection"]):
            raise _bad(text, "it must be https://{organization}.visualstudio.com without a path;"
                       " give the project in `project`")
        return OrganizationUrl(_organization(org, text), f"https://{org}.visualstudio.com",
                               "legacy")

    if not (HOSTNAME.match(host) or _is_ip(host)):
        raise _bad(text, f"{host!r} is not a valid host name")
    # Azure DevOps Server: /{collection}, or /tfs/{collection} as older installs have it.
    prefix = "/tfs" if len(segments) == 2 and segments[0].lower() == "tfs" else ""
    if len(segments) != (2 if prefix else 1):
        raise _bad(text, "an Azure DevOps Server URL must be http(s)://host[:port]/{collection} "
                   "or http(s)://host[:port]/tfs/{collection}"
                   + (" without the project or more; give the project in `project`"
                      if len(segments) > 1 else ""))
    collection = segments[-1]
    if not COLLECTION_NAME.match(collection):
        raise _bad(text, f"{collection!r} is not a valid collection name")
    netloc = parts.netloc.lower()
    return OrganizationUrl(collection, f"{parts.scheme}://{netloc}{prefix}/{collection}", "server")


def same_organization(url: str) -> str:
    """An organization as connections compare it: a cloud organization is one whether it is
    named at dev.azure.com or at {org}.visualstudio.com, and names ignore case."""
    org = parse_organization_url(url, allow_plain_http=True)
    if org.kind in ("cloud", "legacy"):
        return f"https://dev.azure.com/{org.name}".lower()
    return org.base_url.lower()


def _is_ip(host: str) -> bool:
    import ipaddress

    try:
        ipaddress.ip_address(host)
        return True
    except ValueError:
        return False
