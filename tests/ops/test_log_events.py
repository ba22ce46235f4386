"""Every log line of ilyd/ is a snake_case event with fields (`replay_gap_catch_up
window=…`), found by reading the source with ast, and docs/logs.md lists each event an
operator greps for: every warning and error, at the level the code logs it at."""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs" / "logs.md"

# structlog's BoundLogger methods, by the level their lines carry ("exception" is an error
# line with the traceback; "warn", "fatal" and "msg" are its aliases).
LEVEL_OF = {"debug": "debug", "info": "info", "msg": "info", "warning": "warning",
            "warn": "warning", "error": "error", "exception": "error",
            "critical": "critical", "fatal": "critical"}
STDLIB_LEVELS = {"DEBUG": "debug", "INFO": "info", "WARNING": "warning", "ERROR": "error",
                 "CRITICAL": "critical"}
OPERATOR_LEVELS = {"warning", "error", "critical"}
# Methods that return another logger, whose calls this scan would not see.
BOUND = {"bind", "new", "unbind", "try_unbind"}
# `log.log(level, …)` with a level chosen at run time may be a warning: documented as one.
DYNAMIC = "dynamic"
EVENT = re.compile(r"[a-z][a-z0-9_]*")
# A row of docs/logs.md's tables: | `event` | level[ or level…] | fields | meaning |
DOC_ROW = re.compile(r"^\|\s*`([^`]+)`\s*\|\s*([^|]+?)\s*\|", re.MULTILINE)


@dataclass(frozen=True)
class LogCall:
    """One logging call: where it is, the level its line carries and its event name(s)."""

    where: str
    level: str
    events: tuple[str, ...]


def _loggers(tree: ast.Module) -> set[str]:
    """Names a module binds to a logger (`log = structlog.get_logger(__name__)`)."""
    names = set()
    for node in tree.body:
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Call):
            func = node.value.func
            called = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if called in ("get_logger", "getLogger"):
                names |= {t.id for t in node.targets if isinstance(t, ast.Name)}
    return names


def _event_names(node: ast.expr | None) -> tuple[str, ...] | None:
    """The event name(s) of a literal (or a choice of two literals); None otherwise."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return (node.value,)
    if isinstance(node, ast.IfExp):
        body, orelse = _event_names(node.body), _event_names(node.orelse)
        if body is not None and orelse is not None:
            return body + orelse
    return None


def _level_of_log(node: ast.expr) -> str:
    """The level of `log.log(level, …)`: `logging.WARNING` is a warning, a variable is
    dynamic."""
    if isinstance(node, ast.Attribute) and node.attr in STDLIB_LEVELS:
        return STDLIB_LEVELS[node.attr]
    return DYNAMIC


def _logger_method(node: ast.AST, loggers: set[str]) -> ast.Attribute | None:
    """`node` if it is `log.<level>` or `log.log` of one of the module's loggers."""
    if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
            and node.value.id in loggers and node.attr in {*LEVEL_OF, "log"}):
        return node
    return None


def _check_call(call: ast.Call, method: ast.Attribute, at: str) -> LogCall | str:
    """The call's level and event(s), or what is wrong with it."""
    args = list(call.args)
    if method.attr == "log":
        level = _level_of_log(args.pop(0)) if args else DYNAMIC
    else:
        level = LEVEL_OF[method.attr]
    first = args[0] if args else next((k.value for k in call.keywords if k.arg == "event"),
                                      None)
    events = _event_names(first)
    if events is None:
        return f"{at}: the event is not a literal: {ast.unparse(first) if first else 'none'}"
    bad = [e for e in events if not EVENT.fullmatch(e)]
    if bad:
        return (f"{at}: event {bad[0]!r} is not a snake_case name (say what happened in a"
                " name; put the details in fields)")
    return LogCall(at, level, events)


def scan(source: str, where: str) -> tuple[list[LogCall], list[str]]:
    """The log calls of one module, and what is wrong with any of them (by line)."""
    tree = ast.parse(source)
    loggers = _loggers(tree)
    calls: list[LogCall] = []
    problems: list[tuple[int, str]] = []
    called = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and (method := _logger_method(node.func, loggers)):
            called.add(id(method))
            found = _check_call(node, method, f"{where}:{node.lineno}")
            if isinstance(found, str):
                problems.append((node.lineno, found))
            else:
                calls.append(found)
        elif (method := _logger_method(node, loggers)) and id(method) not in called:
            problems.append((node.lineno, f"{where}:{node.lineno}: {ast.unparse(method)} is"
                             " passed around; call it with its event (or log.log(level,"
                             " event, …)) so that its event can be read here"))
        elif (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
              and node.value.id in loggers and node.attr in BOUND):
            problems.append((node.lineno, f"{where}:{node.lineno}: {ast.unparse(node)} makes a"
                             " logger whose events cannot be read here; pass the fields to"
                             " each call, or bind them with structlog.contextvars"))
    return calls, [text for _line, text in sorted(problems)]


def _ilyd() -> Iterator[tuple[str, str]]:
    for path in sorted((ROOT / "ilyd").rglob("*.py")):
        yield path.read_text(), str(path.relative_to(ROOT))


@cache
def _scan_ilyd() -> tuple[list[LogCall], list[str]]:
    calls: list[LogCall] = []
    problems: list[str] = []
    for source, where in _ilyd():
        found, wrong = scan(source, where)
        calls += found
        problems += wrong
    return calls, problems


def _documented() -> dict[str, set[str]]:
    """docs/logs.md's events and the level(s) each row gives."""
    return {event: set(re.findall(r"[a-z]+", levels))
            for event, levels in DOC_ROW.findall(DOCS.read_text())}


def test_the_scan_refuses_prose_dotted_names_computed_events_and_loggers_it_cannot_follow(
) -> None:
    source = '''
import structlog
log = structlog.get_logger(__name__)
def f(flag, name):
    log.info("config reloaded", generation=2)
    log.warning("devorg.started")
    log.error(f"{name}_failed")
    report = log.error if flag else log.warning
    report("x")
    log.info("config_reloaded", generation=2)
    log.info("ilyd_started" if flag else "ilyd_worker_started")
    log.log(logging.WARNING, "org_state_changed")
    log.bind(org="acme").warning("replay id gone")
'''
    calls, problems = scan(source, "m.py")
    assert [p.split(": ", 1)[0] for p in problems] == ["m.py:5", "m.py:6", "m.py:7",
                                                       "m.py:8", "m.py:8", "m.py:13"]
    assert [(c.level, c.events) for c in calls] == [
        ("info", ("config_reloaded",)), ("info", ("ilyd_started", "ilyd_worker_started")),
        ("warning", ("org_state_changed",))]


def test_every_log_call_in_ilyd_names_a_snake_case_event_with_its_details_in_fields(
) -> None:
    calls, problems = _scan_ilyd()
    assert calls, "the scan found no log call at all: is ilyd/ where it looks?"
    assert problems == []


def test_docs_logs_md_lists_every_warning_and_error_event_at_the_level_the_code_logs_it(
) -> None:
    calls, _problems = _scan_ilyd()
    documented = _documented()
    missing, wrong_level = [], []
    for call in calls:
        if call.level not in OPERATOR_LEVELS and call.level != DYNAMIC:
            continue
        for event in call.events:
            if event not in documented:
                missing.append(f"{event} ({call.level}, {call.where})")
            elif call.level == DYNAMIC and not documented[event] & OPERATOR_LEVELS:
                wrong_level.append(f"{event}: logged at a chosen level, documented as "
                                   f"{sorted(documented[event])} ({call.where})")
            elif call.level != DYNAMIC and call.level not in documented[event]:
                wrong_level.append(f"{event}: logged as {call.level}, documented as "
                                   f"{sorted(documented[event])} ({call.where})")
    assert missing == []
    assert wrong_level == []


def test_docs_logs_md_lists_no_event_that_ilyd_does_not_log() -> None:
    calls, _problems = _scan_ilyd()
    logged = {event for call in calls for event in call.events}
    assert sorted(set(_documented()) - logged) == []
