"""Bot files: YAML in, a checked ``Bot`` out, with the line of every step for messages."""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import yaml
from pydantic import ValidationError

from adobot.actions import registry
from adobot.actions.files import read_regular
from adobot.credentials.sources import credential_inputs, sources_in
from adobot.errors import AdobotError, InvalidBot
from adobot.runtime.settings import BotSettings

VARIABLE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
STEP_KEYS_ACTION = {"action", "inputs", "outputs", "name", "on_error"}
STEP_KEYS_LOOP = {"for_each", "as", "steps", "name", "on_error", "parallel"}
ON_ERROR = ("fail", "continue")
INSECURE_TOKEN = ("the token is an insecure string in the bot file; store it in the vault or "
                  "pass it in a variable (--var-env)")
BOT_KEYS = {"name", "description", "variables", "steps", "settings"}
MAX_BOT_BYTES = 1 * 2**20   # a bot file is text a person writes: far less than this
MAX_NESTING = 64            # levels of maps and lists (a for_each is three)
MAX_PARALLEL = 32           # items of one loop at once: a connection's pool holds as many


@dataclass
class Step:
    path: str          # "3", or "3.1" for the first step inside step 3
    line: int
    name: str | None = None
    action: str | None = None
    inputs: dict[str, Any] = field(default_factory=dict)
    outputs: dict[str, str] = field(default_factory=dict)
    for_each: Any = None
    item_name: str = "item"
    steps: list["Step"] = field(default_factory=list)
    on_error: str = "fail"  # or "continue": record the failure and go on
    parallel: int = 1       # a loop's items at once (1: one after another)
    known: bool = True      # False: an unknown action (kept only while validating)

    def assigned(self) -> set[str]:
        """The variables the steps inside this loop set from their outputs."""
        return {variable for inner in self.steps
                for variable in (*inner.outputs.values(), *inner.assigned())}


@dataclass
class Bot:
    name: str
    file: Path
    variables: dict[str, Any]
    steps: list[Step]
    settings: BotSettings = field(default_factory=BotSettings)

    def all_steps(self) -> list[Step]:
        """Every step, depth first (steps inside for_each included)."""
        found: list[Step] = []

        def visit(steps: list[Step]) -> None:
            for step in steps:
                found.append(step)
                visit(step.steps)

        visit(self.steps)
        return found

    def credential_sources(self) -> list[tuple[Step, str, Mapping[str, Any]]]:
        """(step, input, source) of every credential input (a secret, found by its type)."""
        return [(step, name, source) for step in self.all_steps() if step.known and step.action
                for name, source in sources_in(
                    step.inputs, credential_inputs(registry.get(step.action).inputs))]

    def secret_variables(self) -> set[str]:
        """Variables that hold a secret (named by a credential input's {variable: NAME})."""
        return {source["variable"] for _, _, source in self.credential_sources()
                if isinstance(source.get("variable"), str)}

    def insecure_secrets(self) -> list[tuple[Step, Any]]:
        """(step, value) of every secret written in the bot file ({insecure: VALUE})."""
        return [(step, source["insecure"]) for step, _, source in self.credential_sources()
                if "insecure" in source]

    def warnings(self) -> list[str]:
        return [f"{self.file.name}:{step.line}: step {step.path} ({step.action}): "
                f"{INSECURE_TOKEN}" for step, _ in self.insecure_secrets()]


class _LineDict(dict):
    line = 0


class _Checks:
    """Safe YAML whose mappings remember their line and refuse duplicate keys, anchors and
    aliases (a few hundred bytes of aliases expand to gigabytes), and nesting past a limit."""

    depth = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        event = self.peek_event()  # type: ignore[attr-defined]
        line = event.start_mark.line + 1
        if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None):
            raise InvalidBot(f"line {line}: YAML anchors and aliases (&name, *name) are not "
                             "allowed in a bot file", "Write the value out where it is used.")
        self.depth += 1
        try:
            if self.depth > MAX_NESTING:
                raise InvalidBot(f"line {line}: the bot nests maps and lists more than "
                                 f"{MAX_NESTING} deep", "Flatten it, or split it into child "
                                 "bots (RunBot).")
            return super().compose_node(parent, index)  # type: ignore[misc]
        finally:
            self.depth -= 1


class _PyLoader(_Checks, yaml.SafeLoader):
    """PyYAML's own parser: slow, but it reads what libyaml refuses and JSON allows (a
    character written as a JSON surrogate pair, a backslash-u escape for each half)."""


try:  # libyaml's parser, where PyYAML was built with it: a large bot parses ~5x faster
    from yaml.cyaml import CParser
except ImportError:  # pragma: no cover - PyYAML without libyaml
    CParser = None

_Loader: type = _PyLoader
if CParser is not None:
    class _CLoader(_Checks, yaml.composer.Composer, CParser, yaml.constructor.SafeConstructor,
                   yaml.resolver.Resolver):
        """libyaml's events, composed into nodes in Python so the checks hold."""

        def __init__(self, stream: str) -> None:
            CParser.__init__(self, stream)
            yaml.composer.Composer.__init__(self)
            yaml.constructor.SafeConstructor.__init__(self)
            yaml.resolver.Resolver.__init__(self)

    _Loader = _CLoader


def _construct_mapping(loader: Any, node: yaml.MappingNode) -> _LineDict:
    loader.flatten_mapping(node)
    mapping = _LineDict()
    mapping.line = node.start_mark.line + 1
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        if not isinstance(key, (str, int, float, bool)) and key is not None:
            raise InvalidBot(f"line {key_node.start_mark.line + 1}: a mapping key must be text")
        if key in mapping:
            raise InvalidBot(f"line {key_node.start_mark.line + 1}: key {key!r} appears twice "
                             "in the same mapping")
        mapping[key] = loader.construct_object(value_node, deep=True)
    return mapping


for _loader in {_PyLoader, _Loader}:
    _loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def _load_yaml(text: str) -> Any:
    """The document, read by libyaml where it can; what libyaml refuses is read again by
    PyYAML's parser, whose verdict (and error) stands."""
    try:
        return yaml.load(text, Loader=_Loader)  # noqa: S506 - a SafeLoader's constructors
    except yaml.YAMLError:
        if _Loader is _PyLoader:
            raise
        return yaml.load(text, Loader=_PyLoader)  # noqa: S506


def load_bot(path: str | Path, problems: list[InvalidBot] | None = None) -> Bot:
    """Load and check a bot file. With ``problems``, collect every problem instead of raising
    at the first (``adobot validate``); the Bot returned is then as complete as it can be."""
    file = Path(path)
    try:
        text = read_regular(file, MAX_BOT_BYTES, "bot file", field="bot").decode("utf-8")
    except FileNotFoundError:
        raise InvalidBot(f"bot file {str(file)!r} does not exist",
                         "Check the path; it is relative to the current directory "
                         "(for RunBot: to the calling bot's file).") from None
    except AdobotError as exc:
        raise InvalidBot(exc.message, exc.hint, field="bot") from None
    except UnicodeDecodeError as exc:
        raise InvalidBot(f"bot file {str(file)!r} cannot be read: {exc}") from None
    return parse_bot(text, file, problems)


def parse_bot(text: str, file: Path = Path("<bot>"),
              problems: list[InvalidBot] | None = None) -> Bot:
    return _Parser(file, problems).bot(text)


class _Parser:
    def __init__(self, file: Path, problems: list[InvalidBot] | None) -> None:
        self.file = file
        self.problems = problems

    def report(self, line: int, message: str, hint: str | None = None,
               field: str | None = None) -> None:
        where = f"{self.file.name}:{line}" if line else self.file.name
        problem = InvalidBot(f"{where}: {message}", hint, field=field)
        if self.problems is None:
            raise problem
        self.problems.append(problem)

    def bot(self, text: str) -> Bot:
        if len(text) > MAX_BOT_BYTES:
            raise InvalidBot(f"{self.file.name} is larger than {MAX_BOT_BYTES // 2**20} MiB")
        try:
            data = _load_yaml(text)
        except AdobotError as exc:  # found while loading (a duplicate key, an alias): stop
            raise InvalidBot(f"{self.file.name}: {exc.message}", exc.hint) from None
        except RecursionError:
            raise InvalidBot(f"{self.file.name} nests too deep to read") from None
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
            problem = getattr(exc, "problem", None) or str(exc)
            raise InvalidBot(f"{self.file.name} is not valid YAML{where}: {problem}") from None
        if not isinstance(data, dict):
            raise InvalidBot(f"{self.file.name} must be a mapping with 'name' and 'steps'",
                             "Start from examples/quickstart.yaml.")
        line = getattr(data, "line", 0)
        self.keys(data, BOT_KEYS, line, "")
        name = data.get("name", self.file.stem)
        if not isinstance(name, str) or not name.strip():
            self.report(line, "'name' must be text")
            name = self.file.stem
        variables = data.get("variables") or {}
        if not isinstance(variables, dict):
            self.report(line, "'variables' must be a mapping of names to values")
            variables = {}
        for var in variables:
            if not isinstance(var, str) or not VARIABLE_NAME.match(var):
                self.report(getattr(variables, "line", line), f"variable name {var!r} is not "
                            "valid (letters, digits and '_', not starting with a digit)")
        steps = data.get("steps")
        if not isinstance(steps, list) or not steps:
            self.report(line, "'steps' must be a non-empty list of steps")
            steps = []
        return Bot(name=name, file=self.file, variables=dict(variables),
                   steps=self.steps(steps, "", line), settings=self.settings(data, line))

    def settings(self, data: dict, line: int) -> BotSettings:
        raw = data.get("settings") or {}
        try:
            return BotSettings.model_validate(raw)
        except ValidationError as exc:
            for err in exc.errors():
                where = ".".join(str(p) for p in err["loc"]) or "settings"
                self.report(getattr(raw, "line", line), f"settings: {where}: "
                            f"{str(err['msg']).removeprefix('Value error, ')}",
                            f"Allowed: {', '.join(BotSettings.model_fields)}.")
            return BotSettings()

    def steps(self, raw_steps: list[Any], prefix: str, line: int) -> list[Step]:
        parsed = [self.step(raw, f"{prefix}{i}", line) for i, raw in enumerate(raw_steps, 1)]
        return [step for step in parsed if step is not None]

    def step(self, raw: Any, path: str, parent_line: int) -> Step | None:
        if not isinstance(raw, dict):
            self.report(parent_line, f"step {path} must be a mapping with 'action' or 'for_each'")
            return None
        line = getattr(raw, "line", 0)
        on_error = raw.get("on_error", "fail")
        if on_error not in ON_ERROR:
            self.report(line, f"step {path}: on_error must be 'fail' or 'continue', not "
                        f"{on_error!r}")
            on_error = "fail"
        if "for_each" in raw:
            return self.loop(raw, path, line, on_error)
        if "action" not in raw:
            self.report(line, f"step {path} has neither 'action' nor 'for_each'")
            return None
        self.keys(raw, STEP_KEYS_ACTION, line, f"step {path}: ")
        step = Step(path=path, line=line, name=raw.get("name"), action=str(raw["action"]),
                    on_error=on_error)
        try:
            action = registry.get(raw["action"])
        except InvalidBot as exc:
            self.report(line, f"step {path}: {exc.message}", exc.hint, field="action")
            step.known = False
            return step
        step.action = action.name
        inputs = raw.get("inputs") or {}
        if not isinstance(inputs, dict):
            self.report(line, f"step {path} ({action.name}): 'inputs' must be a mapping of "
                        "input names to values")
            inputs = {}
        outputs = raw.get("outputs") or {}
        if not isinstance(outputs, dict):
            self.report(line, f"step {path} ({action.name}): 'outputs' must map output names "
                        "to variable names")
            outputs = {}
        known = list(action.outputs.model_fields)
        for out, var in list(outputs.items()):
            if out not in known:
                self.report(line, f"step {path}: {action.name} has no output {out!r}",
                            f"Its outputs: {', '.join(known) or 'none'}.")
                del outputs[out]
            elif not isinstance(var, str) or not VARIABLE_NAME.match(var):
                self.report(line, f"step {path}: output {out!r} must name a variable, not "
                            f"{var!r}")
                del outputs[out]
        step.inputs, step.outputs = dict(inputs), dict(outputs)
        return step

    def loop(self, raw: dict, path: str, line: int, on_error: str) -> Step:
        self.keys(raw, STEP_KEYS_LOOP, line, f"step {path}: ")
        item_name = raw.get("as", "item")
        if not isinstance(item_name, str) or not VARIABLE_NAME.match(item_name):
            self.report(line, f"step {path}: 'as' must be a variable name, not {item_name!r}")
            item_name = "item"
        inner = raw.get("steps")
        if not isinstance(inner, list) or not inner:
            self.report(line, f"step {path}: a for_each step needs a non-empty list of 'steps'")
            inner = []
        parallel = raw.get("parallel", 1)
        if isinstance(parallel, bool) or not isinstance(parallel, int) \
                or not 1 <= parallel <= MAX_PARALLEL:
            self.report(line, f"step {path}: parallel must be a whole number from 1 to "
                        f"{MAX_PARALLEL} (items run at once), not {parallel!r}",
                        "1 runs the items one after another; 8 suits most bulk work.")
            parallel = 1
        return Step(path=path, line=line, name=raw.get("name"), for_each=raw["for_each"],
                    item_name=item_name, on_error=on_error, parallel=parallel,
                    steps=self.steps(inner, f"{path}.", line))

    def keys(self, mapping: dict, allowed: set[str], line: int, where: str) -> None:
        for key in mapping:
            if key not in allowed:
                self.report(line, f"{where}unknown key {key!r}",
                            f"Allowed here: {', '.join(sorted(allowed))}.")
