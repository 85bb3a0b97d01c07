"""The sandbox's in-memory organizations, projects, repositories and tokens.

Ids are derived from names (uuid5), so a seed always yields the same ids and URLs.
"""
from __future__ import annotations

import bisect
import copy
import hashlib
import json
import random
import threading
import time
import uuid
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from adobot.sandbox.entra import Entra
from adobot.sandbox.faults import FaultSet

_NAMESPACE = uuid.UUID("6f1a3c2e-4b7d-4e0a-9c55-2d8f0b1e7a90")

# Full access ("app_token") grants everything; a broader scope grants the narrower ones.
SCOPE_IMPLIES = {
    "vso.code_full": {"vso.code_manage", "vso.code_write", "vso.code"},
    "vso.code_manage": {"vso.code_write", "vso.code"},
    "vso.code_write": {"vso.code"},
    "vso.build_execute": {"vso.build"},
    "vso.work_full": {"vso.work_write", "vso.work"},
    "vso.work_write": {"vso.work"},
    "vso.project_manage": {"vso.project_write", "vso.project"},
    "vso.project_write": {"vso.project"},
    "vso.wiki_write": {"vso.wiki"},
    "vso.identity_manage": {"vso.identity"},
}


def stable_id(*parts: str) -> str:
    return str(uuid.uuid5(_NAMESPACE, "/".join(p.lower() for p in parts)))


@dataclass
class Token:
    token: str
    user: str
    email: str
    scopes: set[str]
    expired: bool = False
    organizations: set[str] | None = None  # None: valid in every organization
    expires_at: float | None = None        # an Entra token's end (epoch seconds)

    @property
    def out_of_date(self) -> bool:
        return self.expired or (self.expires_at is not None and time.time() >= self.expires_at)

    @property
    def user_id(self) -> str:
        return stable_id("user", self.email)

    def allows(self, scopes: tuple[str, ...]) -> bool:
        """Whether the token holds one of ``scopes`` (none: any valid token will do)."""
        if not scopes or "app_token" in self.scopes:
            return True
        granted = set(self.scopes)
        for held in self.scopes:
            granted |= SCOPE_IMPLIES.get(held, set())
        return not granted.isdisjoint(scopes)

    def __repr__(self) -> str:
        return f"Token(user={self.user!r}, scopes={sorted(self.scopes)})"


ZERO_ID = "0" * 40  # the object id of "nothing": a branch that does not exist yet


@dataclass
class Commit:
    id: str
    parents: list[str]
    files: dict[str, bytes]  # the whole tree at this commit: "/path/name" -> content
    comment: str
    author: str
    email: str
    date: str


@dataclass
class Repository:
    id: str
    name: str
    default_branch: str | None = None
    size: int = 0
    branches: dict[str, str] = field(default_factory=dict)  # "refs/heads/main" -> commit id
    commits: dict[str, Commit] = field(default_factory=dict)

    def tip(self, ref: str) -> Commit | None:
        commit_id = self.branches.get(ref)
        return self.commits[commit_id] if commit_id else None

    def history(self, start: Commit) -> list[Commit]:
        """``start`` and its ancestors, newest first (first parents: the sandbox never merges)."""
        found: list[Commit] = []
        current: Commit | None = start
        while current is not None:
            found.append(current)
            current = self.commits.get(current.parents[0]) if current.parents else None
        return found

    def touches(self, commit: Commit, path: str) -> bool:
        """Whether a commit changed the file at ``path`` or anything under the folder ``path``."""
        before = self.commits[commit.parents[0]].files if commit.parents else {}
        under = path.rstrip("/") + "/"
        return any(before.get(name) != commit.files.get(name)
                   for name in set(before) | set(commit.files)
                   if name == path or name.startswith(under) or path == "/")

    def commit(self, files: dict[str, bytes], parents: list[str], comment: str, author: str,
               email: str, date: str) -> Commit:
        digest = hashlib.sha1(repr((sorted(files.items()), parents, comment, date,
                                    len(self.commits))).encode("utf-8")).hexdigest()
        made = Commit(id=digest, parents=parents, files=files, comment=comment, author=author,
                      email=email, date=date)
        self.commits[made.id] = made
        return made


@dataclass
class Pipeline:
    id: int
    name: str
    folder: str
    repository_id: str
    path: str
    revision: int = 1
    run_polls: int = 2            # GETs of a run before it completes; -1: never completes
    run_result: str = "succeeded"
    runs: int = 0


@dataclass
class Run:
    id: int
    name: str
    pipeline: Pipeline
    ref_name: str
    version: str  # the commit the run builds
    created: str
    template_parameters: dict[str, Any]
    variables: dict[str, Any]
    state: str = "inProgress"
    result: str | None = None
    finished: str | None = None
    polls: int = 0
    seeded: bool = False  # a past run of the seed, not one queued


@dataclass
class PullRequest:
    id: int
    repository: Repository
    source: str                 # refs/heads/...
    target: str
    title: str
    description: str
    is_draft: bool
    created_by: Token
    created: str
    source_commit: str
    target_commit: str
    reviewers: list[str] = field(default_factory=list)  # identity ids
    work_items: list[int] = field(default_factory=list)
    status: str = "active"


@dataclass
class Wiki:
    """A project wiki (its own hidden repository) or a code wiki (a folder of a repository)."""

    id: str
    name: str
    type: str                   # "projectWiki" or "codeWiki"
    repository: Repository
    mapped_path: str = "/"
    branch: str = "refs/heads/wikiMaster"


@dataclass
class WorkItem:
    id: int
    rev: int
    type: str
    fields: dict[str, Any]
    relations: list[dict[str, Any]]


DEFAULT_WORK_ITEM_TYPES = ["Bug", "Epic", "Feature", "Issue", "Task", "Test Case", "User Story"]
KNOWN_FIELDS = {
    "System.Title", "System.Description", "System.AssignedTo", "System.Tags", "System.AreaPath",
    "System.IterationPath", "System.State", "System.Reason", "System.History",
    "Microsoft.VSTS.Common.Priority", "Microsoft.VSTS.Common.Severity",
    "Microsoft.VSTS.Common.AcceptanceCriteria", "Microsoft.VSTS.Common.ValueArea",
    "Microsoft.VSTS.Scheduling.StoryPoints", "Microsoft.VSTS.Scheduling.RemainingWork",
    "Microsoft.VSTS.Scheduling.OriginalEstimate", "Microsoft.VSTS.TCM.ReproSteps",
}


@dataclass
class Project:
    id: str
    name: str
    description: str = ""
    revision: int = 1
    repositories: list[Repository] = field(default_factory=list)
    pipelines: list[Pipeline] = field(default_factory=list)
    work_item_types: list[str] = field(default_factory=lambda: list(DEFAULT_WORK_ITEM_TYPES))
    custom_fields: set[str] = field(default_factory=set)
    # Classification nodes below the project's root node, lower-cased ("payments\\web").
    areas: set[str] = field(default_factory=set)
    iterations: set[str] = field(default_factory=set)
    wikis: list[Wiki] = field(default_factory=list)

    def wiki(self, id_or_name: str) -> Wiki | None:
        key = id_or_name.lower()
        return next((w for w in self.wikis if w.id == key or w.name.lower() == key), None)

    def has_node(self, tree: str, path: str) -> bool:
        """Whether an area or iteration path exists, node by node from the project's root."""
        key = path.lower().rstrip("\\")
        return key == self.name.lower() or key in (self.areas if tree == "area" else self.iterations)

    def repository(self, id_or_name: str) -> Repository | None:
        key = id_or_name.lower()
        return next((r for r in self.repositories if r.id == key or r.name.lower() == key), None)

    def pipeline(self, pipeline_id: int) -> Pipeline | None:
        return next((p for p in self.pipelines if p.id == pipeline_id), None)

    def add_pipeline(self, pipeline: Pipeline) -> None:
        """Kept in the order the list route answers (name, then id): no sort per page."""
        bisect.insort(self.pipelines, pipeline, key=_pipeline_order)

    def work_item_type(self, name: str) -> str | None:
        return next((t for t in self.work_item_types if t.lower() == name.lower()), None)


@dataclass
class Organization:
    id: str
    name: str
    projects: list[Project] = field(default_factory=list)
    # None: Azure DevOps Services (REST API 7.1); else the REST API version of the Azure DevOps
    # Server it plays (7.0: Server 2022, 6.0: Server 2020).
    server_version: tuple[int, int] | None = None
    # Whether the Code Search extension is installed (seed "code_search": false: it is not).
    code_search: bool = True

    @property
    def api_version(self) -> tuple[int, int]:
        return self.server_version or (7, 1)

    def project(self, id_or_name: str) -> Project | None:
        key = id_or_name.lower()
        return next((p for p in self.projects if p.id == key or p.name.lower() == key), None)


class SandboxState:
    """Everything the sandbox knows; guarded by one lock (the server is threaded)."""

    def __init__(self, seed: dict[str, Any] | None = None) -> None:
        self.lock = threading.RLock()
        self.organizations: dict[str, Organization] = {}
        self.tokens: dict[str, Token] = {}
        self.requests: list[dict[str, Any]] = []
        self.in_flight = self.max_in_flight = 0  # requests being answered at once
        self.work_items: dict[int, WorkItem] = {}
        self.runs: dict[int, Run] = {}
        self.pull_requests: dict[int, PullRequest] = {}
        self._next = {"pipeline": 1, "run": 1, "work_item": 1, "push": 1, "pull_request": 1}
        # The most work items a WIQL query may match (the service's 20,000: VS402337); tests
        # lower it to see large queries split without creating 20,000 items.
        self.wiql_limit = 20_000
        self.faults = FaultSet()
        self.entra = Entra()  # the identities it signs in (seed "entra")
        # Round-trip time a distant service adds to every answer (seed "latency": {"ms",
        # "jitter_ms"}), so benchmarks and tests can see round trips on loopback.
        self.latency_ms = 0.0
        self.jitter_ms = 0.0
        self.load(seed if seed is not None else default_seed())

    def set_latency(self, ms: float, jitter_ms: float = 0.0) -> None:
        if ms < 0 or jitter_ms < 0 or jitter_ms > ms:
            raise ValueError("latency needs ms >= 0 and 0 <= jitter_ms <= ms")
        self.latency_ms, self.jitter_ms = float(ms), float(jitter_ms)

    def delay(self) -> float:
        """Seconds to wait before this answer: the latency, give or take the jitter."""
        if not self.latency_ms:
            return 0.0
        return (self.latency_ms + random.uniform(-self.jitter_ms, self.jitter_ms)) / 1000

    def next_id(self, kind: str) -> int:
        with self.lock:
            value = self._next[kind]
            self._next[kind] = value + 1
            return value

    def load(self, seed: dict[str, Any]) -> None:
        with self.lock:
            for org_name, org in (seed.get("organizations") or {}).items():
                organization = Organization(id=stable_id(org_name), name=org_name,
                                            server_version=_version(org.get("server_version")),
                                            code_search=bool(org.get("code_search", True)))
                for project in org.get("projects", []):
                    organization.projects.append(self._project(org_name, project))
                self.organizations[org_name.lower()] = organization
            for item in seed.get("tokens") or []:
                self.add_token(**item)
            for rule in seed.get("faults") or []:
                self.faults.add(rule)
            self.entra = Entra.from_seed(seed.get("entra"))
            latency = seed.get("latency") or {}
            if latency:
                self.set_latency(float(latency.get("ms", 0)), float(latency.get("jitter_ms", 0)))

    def _project(self, org_name: str, seed: dict[str, Any]) -> Project:
        project = Project(
            id=stable_id(org_name, seed["name"]), name=seed["name"],
            description=seed.get("description", ""),
            repositories=[Repository(id=stable_id(org_name, seed["name"], r["name"]),
                                     name=r["name"], default_branch=r.get("defaultBranch"),
                                     size=int(r.get("size", 0)))
                          for r in seed.get("repositories", [])],
            custom_fields=set(seed.get("custom_fields", [])),
            areas=_nodes(seed["name"], seed.get("areas", [])),
            iterations=_nodes(seed["name"], seed.get("iterations", [])))
        if "work_item_types" in seed:
            project.work_item_types = list(seed["work_item_types"])
        seeded = {r["name"].lower(): list(r.get("branches") or []) for r in seed.get("repositories", [])}
        files = {r["name"].lower(): {_item_path(path): content.encode("utf-8")
                                     for path, content in (r.get("files") or {}).items()}
                 for r in seed.get("repositories", [])}
        for item in seed.get("pipelines", []):
            repo = project.repository(item["repository"])
            if repo is None:
                raise ValueError(f"seed: pipeline {item['name']!r} names an unknown repository")
            path = item.get("path", "azure-pipelines.yml")
            project.add_pipeline(Pipeline(
                id=self.next_id("pipeline"), name=item["name"], folder=item.get("folder", "\\"),
                repository_id=repo.id, path=path, run_polls=int(item.get("run_polls", 2)),
                run_result=item.get("run_result", "succeeded")))
            # A seeded pipeline can run: its YAML is on the default branch of its repository.
            files[repo.name.lower()].setdefault(
                _item_path(path), pipeline_yaml(item.get("parameters") or []).encode("utf-8"))
        histories = {r["name"].lower(): r.get("history") or [] for r in seed.get("repositories", [])}
        for repo in project.repositories:
            if repo.default_branch:
                tree = files[repo.name.lower()] or {"/README.md": f"# {repo.name}\n".encode()}
                first = repo.commit(tree, [], "Initial commit", "Sandbox Seed",
                                    "seed@sandbox.example", LAST_CHANGE)
                repo.branches[repo.default_branch] = first.id
                for branch in seeded[repo.name.lower()]:  # more branches, at the same commit
                    repo.branches[branch] = first.id
                # Later commits on the default branch: {comment, author, email, date, files}.
                for entry in histories[repo.name.lower()]:
                    tip = repo.tip(repo.default_branch)
                    assert tip is not None
                    tree = {**tip.files, **{_item_path(path): content.encode("utf-8")
                                           for path, content in entry.get("files", {}).items()}}
                    made = repo.commit(tree, [tip.id], entry["comment"], entry["author"],
                                       entry["email"], entry["date"])
                    repo.branches[repo.default_branch] = made.id
        for item in seed.get("wikis", []):
            project.wikis.append(self._wiki(org_name, project, item))
        for item in seed.get("pipelines", []):
            pipeline = next(p for p in project.pipelines if p.name == item["name"])
            for past in item.get("runs", []):  # finished runs: {result, finished, branch}
                self._past_run(project, pipeline, past)
        return project

    def _wiki(self, org_name: str, project: Project, seed: dict[str, Any]) -> Wiki:
        """A project wiki with its pages ({"/Page/Sub page": markdown}), or a code wiki
        published from a folder of one of the project's repositories."""
        if seed.get("type", "projectWiki") == "codeWiki":
            repo = project.repository(seed["repository"])
            if repo is None or not repo.default_branch:
                raise ValueError(f"seed: code wiki {seed['name']!r} needs a repository with a branch")
            return Wiki(id=stable_id(org_name, project.name, "wiki", seed["name"]),
                        name=seed["name"], type="codeWiki", repository=repo,
                        mapped_path=_item_path(seed.get("mapped_path", "/")),
                        branch=repo.default_branch)
        name = seed.get("name") or f"{project.name}.wiki"
        repo = Repository(id=stable_id(org_name, project.name, "wiki", name), name=name,
                          default_branch="refs/heads/wikiMaster")
        tree = {page_file(path): text.encode("utf-8")
                for path, text in (seed.get("pages") or {}).items()}
        first = repo.commit(tree, [], "Initial wiki", "Sandbox Seed", "seed@sandbox.example",
                            LAST_CHANGE)
        repo.branches["refs/heads/wikiMaster"] = first.id
        return Wiki(id=repo.id, name=name, type="projectWiki", repository=repo)

    def _past_run(self, project: Project, pipeline: Pipeline, seed: dict[str, Any]) -> None:
        repo = next(r for r in project.repositories if r.id == pipeline.repository_id)
        ref = seed.get("branch") or repo.default_branch or "refs/heads/main"
        tip = repo.tip(ref)
        run_id = self.next_id("run")
        pipeline.runs += 1
        self.runs[run_id] = Run(
            id=run_id, name=f"{seed['finished'][:10].replace('-', '')}.{pipeline.runs}", pipeline=pipeline,
            ref_name=ref, version=tip.id if tip else ZERO_ID, created=seed["finished"],
            template_parameters={}, variables={}, state="completed", result=seed["result"],
            finished=seed["finished"], seeded=True)

    def add_token(self, token: str, user: str = "Sandbox User", email: str | None = None,
                  scopes: list[str] | None = None, expired: bool = False,
                  organizations: list[str] | None = None,
                  expires_at: float | None = None) -> Token:
        entry = Token(token=token, user=user,
                      email=email or f"{user.lower().replace(' ', '.')}@sandbox.example",
                      scopes=set(scopes or ["app_token"]), expired=expired,
                      organizations={o.lower() for o in organizations} if organizations else None,
                      expires_at=expires_at)
        with self.lock:
            self.tokens[token] = entry
        return entry

    def organization(self, name: str) -> Organization | None:
        return self.organizations.get(name.lower())

    def stats(self, title_prefix: str = "") -> dict[str, Any]:
        """Counts for whoever drives the sandbox from outside (GET /_sandbox/stats). With a
        title prefix, the work items whose title starts with it: how many, and how many
        distinct titles (fewer titles than items: something was created twice)."""
        with self.lock:
            titles = [str(w.fields.get("System.Title")) for w in self.work_items.values()]
            titled = [title for title in titles if title.startswith(title_prefix)]
            return {"requests": len(self.requests), "work_items": len(titles),
                    "distinct_work_item_titles": len(set(titles)),
                    "runs": len(self.queued_runs()),
                    "repositories": sum(len(p.repositories) for o in self.organizations.values()
                                        for p in o.projects),
                    "title_prefix": title_prefix, "work_items_titled": len(titled),
                    "distinct_titles_titled": len(set(titled)),
                    "in_flight": self.in_flight, "max_in_flight": self.max_in_flight}

    def queued_runs(self) -> dict[int, Run]:
        """The runs queued through the API (the seed's past runs left out)."""
        with self.lock:
            return {key: run for key, run in self.runs.items() if not run.seeded}

    def enter(self) -> None:
        """A request arrived (counted until its answer has left)."""
        with self.lock:
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)

    def leave(self) -> None:
        with self.lock:
            self.in_flight -= 1

    def reset_stats(self) -> None:
        """Forget the requests seen and the most that were in flight at once."""
        with self.lock:
            self.requests.clear()
            self.max_in_flight = self.in_flight

    def record(self, entry: dict[str, Any]) -> None:
        with self.lock:
            self.requests.append(entry)


LAST_CHANGE = "2026-01-05T09:30:00Z"


def _pipeline_order(pipeline: Pipeline) -> tuple[str, int]:
    return pipeline.name.lower(), pipeline.id


def _version(value: object) -> tuple[int, int] | None:
    """A seed's "7.0" -> (7, 0); none for Azure DevOps Services."""
    if not value:
        return None
    major, _, minor = str(value).partition(".")
    return int(major), int(minor or 0)


def _nodes(project: str, paths: list[str]) -> set[str]:
    """Every node of the given paths (a path implies its parents), under the project's root."""
    nodes: set[str] = set()
    for path in paths:
        parts = [project] + [p for p in path.split("\\") if p][1:]
        nodes |= {"\\".join(parts[:depth]).lower() for depth in range(2, len(parts) + 1)}
    return nodes


def _item_path(path: str) -> str:
    return "/" + path.strip().lstrip("/")


def page_file(page: str) -> str:
    """A wiki page's path -> its file in the wiki's repository, as the service names them:
    "/Runbooks/Payment failures" -> "/Runbooks/Payment-failures.md" ('-' itself is "%2D")."""
    parts = [p for p in page.split("/") if p]
    return "/" + "/".join(p.replace("-", "%2D").replace(" ", "-") for p in parts) + ".md"


def page_path(file: str) -> str:
    """The inverse of ``page_file``."""
    parts = [p for p in file.removesuffix(".md").split("/") if p]
    return "/" + "/".join(p.replace("-", " ").replace("%2D", "-") for p in parts)


def pipeline_yaml(parameters: list[str]) -> str:
    """A minimal pipeline definition declaring the given string parameters."""
    declared = "".join(f"- name: {name}\n  type: string\n  default: ''\n" for name in parameters)
    return ((f"parameters:\n{declared}" if parameters else "") +
            "trigger: none\npool:\n  vmImage: ubuntu-latest\nsteps:\n- script: echo hello\n")


def default_seed() -> dict[str, Any]:
    text = resources.files("adobot.sandbox").joinpath("seed.json").read_text(encoding="utf-8")
    return json.loads(text)


def load_seed(path: str | Path) -> dict[str, Any]:
    return copy.deepcopy(json.loads(Path(path).read_text(encoding="utf-8")))
