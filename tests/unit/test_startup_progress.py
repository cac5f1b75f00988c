"""Start-up phases and their estimates, the log filters for routine polls, the augmentation's
cost-aware ETA, and the one style of every `docadapt perf X --help`."""

from __future__ import annotations

import logging
import re
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from service.augment.eta import UnitClock
from service.core.quiet_logs import AccessProbeFilter, HttpxPollFilter
from service.core.startup import PHASES, Startup
from service.jobs.watch import eta_text, plain_line


def test_a_first_start_says_its_estimate_is_unknown_and_the_next_uses_its_timings(
    tmp_path: Path,
) -> None:
    first = Startup(tmp_path)
    first.begin("loading the service")
    first.begin("starting vLLM", lambda: "Loading weights took 5.03 seconds")
    snap = first.snapshot()
    assert snap["name"] == "starting vLLM" and snap["step"] == PHASES.index("starting vLLM") + 1
    assert snap["eta_s"] is None and snap["estimate"].startswith("unknown")
    assert snap["detail"] == "Loading weights took 5.03 seconds"
    time.sleep(0.2)
    first.finish()
    assert first.snapshot()["name"] == "ready"

    second = Startup(tmp_path)
    second.begin("starting vLLM")
    snap = second.snapshot()
    assert snap["expected_s"] is not None and snap["expected_s"] >= 0.1
    assert snap["eta_s"] is not None and snap["estimate"] == "from the last start"
    assert "step 3 of 7" in second.summary()


def test_a_failed_start_shows_where_it_failed(tmp_path: Path) -> None:
    startup = Startup(tmp_path)
    startup.begin("starting vLLM")
    startup.fail("vLLM exited with code 1 while starting")
    snap = startup.snapshot()
    assert snap["name"] == "failed" and snap["failed_during"] == "starting vLLM"
    assert "exited with code 1" in snap["error"]


def _record(name: str, msg: str, args: tuple[object, ...]) -> logging.LogRecord:
    return logging.LogRecord(name, logging.INFO, __file__, 1, msg, args, None)


def test_routine_polls_are_filtered_and_everything_else_kept() -> None:
    httpx_filter, access = HttpxPollFilter(), AccessProbeFilter()
    fmt = 'HTTP Request: %s %s "%s %d %s"'
    poll = _record("httpx", fmt, ("GET", "http://127.0.0.1:5/health", "HTTP/1.1", 200, "OK"))
    failed = _record("httpx", fmt, ("GET", "http://127.0.0.1:5/health", "HTTP/1.1", 500, "E"))
    other = _record("httpx", fmt, ("POST", "http://h/v1/completions", "HTTP/1.1", 200, ""))
    assert not httpx_filter.filter(poll)
    assert httpx_filter.filter(failed) and httpx_filter.filter(other)
    line = '%s - "%s %s HTTP/%s" %d'
    assert not access.filter(_record("uvicorn.access", line, ("c", "GET", "/readyz", "1.1", 503)))
    assert not access.filter(_record("uvicorn.access", line, ("c", "GET", "/healthz", "1.1", 200)))
    kept = _record("uvicorn.access", line, ("c", "GET", "/v1/collections", "1.1", 200))
    assert access.filter(kept)


def test_untimed_global_units_are_priced_above_sentence_units_and_called_rough() -> None:
    clock = UnitClock({"local": (45, 0), "global": (4, 0)})
    assert clock.estimate() == (None, "no unit has finished yet")
    clock.start("local")
    for _ in range(45):
        time.sleep(0.002)
        clock.unit_done("local")
    per_local = clock._clocks["local"].seconds / 45
    left, note = clock.estimate()
    assert note is not None and "global" in note and note.startswith("rough")
    # A rate counted in units would say 4 x per_local; global units are priced far higher.
    assert left is not None and left > 20 * 4 * per_local
    clock.start("global")
    for _ in range(3):
        time.sleep(0.01)
        clock.unit_done("global")
    left, note = clock.estimate()
    assert note is None and left is not None and left > 0


def test_watch_lines_say_when_an_eta_is_rough_and_drop_an_ended_jobs_message() -> None:
    running = {
        "status": "running",
        "progress": {"done": 45, "total": 49},
        "eta_seconds": 130.0,
        "metrics": {"eta_note": "rough: global units not timed yet"},
        "message": "augmenting (global)",
    }
    assert eta_text(running) == "~2m10s?"
    line = plain_line("augmentation job_1", running)
    assert re.match(r"\d\d:\d\d:\d\d augmentation job_1 running 45/49 \(92%\) eta ~2m10s?", line)
    done = {**running, "status": "succeeded", "message": "loading into vLLM"}
    assert "loading into vLLM" not in plain_line("augmentation job_1", done)
    assert eta_text({**running, "metrics": {}}) == "2m10s"


PERF = ("query", "train", "ready", "augment", "quality", "evalset", "score", "load", "queue")


@pytest.mark.parametrize("command", PERF)
def test_every_perf_help_is_complete_and_in_one_style(command: str) -> None:
    from service.cli import app

    result = CliRunner().invoke(app, ["perf", command, "--help"])
    text = result.output
    assert result.exit_code == 0, text
    assert text.startswith(f"usage: docadapt perf {command} "), text[:200]
    options = text.split("options:", 1)[1]
    # Every option line has its help (an option alone on its line has the help on the next).
    entries = re.findall(r"^  (-[^\n]*)\n((?:      +[^\n]*\n)*)", options, re.M)
    assert entries
    for head, rest in entries:
        name = head.split()[0].rstrip(",")
        described = len(head.split("  ")) > 1 and head.split("  ", 1)[1].strip() or rest.strip()
        assert described, f"{command}: {name} has no help"
    # One meaning per option name: --url is the service, a teacher is --teacher-url.
    if "--url" in options:
        assert "service" in options.split("--url", 1)[1].split("\n  -", 1)[0]
    assert "--api-key" not in options or command in ("ready", "load")  # both: a workspace key
