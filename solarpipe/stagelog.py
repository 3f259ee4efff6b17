"""The log excerpt of one stage, for its weblog page.

Two sources, both captured while the stage runs: solarpipe's own Python log
records (a handler on the ``solarpipe`` logger; WARNING and above unless the
run is verbose) and the lines CASA wrote to its log file (casalog) during the
stage, of which the WARN and SEVERE ones and the "Begin Task" lines (which
CASA tasks ran) are kept. Repeated lines are counted once and the excerpt is
capped, so a stage page stays small; the full CASA log is named on the page.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

#: CASA log priorities and Python levels shown as warnings / errors on the page
WARNING_LEVELS = {"WARN", "WARNING"}
ERROR_LEVELS = {"SEVERE", "ERROR", "CRITICAL"}
#: CASA INFO lines worth keeping: which CASA task ran, and solarpipe's own markers
CASA_INFO_MARKERS = ("Begin Task:", "solarpipe stage")


def casa_log_file() -> Path | None:
    """The CASA log file of this process (casalog), or None without CASA."""
    try:
        from casatools import logsink

        name = logsink().logfile()
    except Exception:  # noqa: BLE001 - no CASA: no CASA log
        return None
    return Path(name) if name and Path(name).is_file() else None


def parse_casa_log_line(line: str) -> tuple[str, str, str] | None:
    """(priority, origin, message) of a CASA log line ``date time<TAB>PRIO<TAB>origin<TAB>msg``."""
    parts = line.rstrip("\n").split("\t", 3)
    if len(parts) < 4:
        return None
    return parts[1].strip(), parts[2].strip(), parts[3].strip()


def level_class(level: str) -> str:
    """'error', 'warning' or 'info': how a line is highlighted on the stage page."""
    if level in ERROR_LEVELS:
        return "error"
    if level in WARNING_LEVELS:
        return "warning"
    return "info"


@dataclass
class StageLog:
    """Collects one stage's log lines (use as a context manager around the stage)."""

    max_lines: int = 60
    lines: list[dict[str, Any]] = field(default_factory=list)
    casa_log: Path | None = None  # None: this process's casalog file
    _offset: int = 0
    _handler: logging.Handler | None = None

    def __enter__(self) -> "StageLog":
        self.casa_log = self.casa_log or casa_log_file()
        self._offset = self.casa_log.stat().st_size if self.casa_log else 0
        self._handler = _ListHandler(self.lines)
        logging.getLogger("solarpipe").addHandler(self._handler)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._handler is not None:
            logging.getLogger("solarpipe").removeHandler(self._handler)
            self._handler = None
        self._read_casa_log()

    def _read_casa_log(self) -> None:
        if not self.casa_log or not self.casa_log.is_file():
            return
        with open(self.casa_log, errors="replace") as fh:
            fh.seek(self._offset)
            text = fh.read()
        entries: list[list[str]] = []  # [priority, origin, message], continuation lines joined
        for line in text.splitlines():
            parsed = parse_casa_log_line(line)
            if parsed is None:
                continue
            prio, origin, msg = parsed
            if origin.endswith("+") and entries and entries[-1][0] == prio:
                entries[-1][2] += " " + msg
            else:
                entries.append([prio, origin.split(" (file ")[0], msg])
        for prio, origin, msg in entries:
            if level_class(prio) != "info" or any(m in msg for m in CASA_INFO_MARKERS):
                self.lines.append({"source": "casa", "level": prio, "origin": origin,
                                   "message": msg[:500]})

    def excerpt(self) -> dict[str, Any]:
        """The lines for the weblog: repeats counted once, warnings and errors first in the
        cap; solarpipe's records, then CASA's lines, each in the order written."""
        merged: dict[tuple[str, str], dict[str, Any]] = {}
        for ln in self.lines:
            key = (ln["level"], ln["message"])
            if key in merged:
                merged[key]["count"] += 1
            else:
                merged[key] = {**ln, "count": 1, "order": len(merged), "class": level_class(ln["level"])}
        rank = {"error": 0, "warning": 1, "info": 2}
        kept = sorted(merged.values(), key=lambda d: (rank[d["class"]], d["order"]))[: self.max_lines]
        kept.sort(key=lambda d: d["order"])
        for d in kept:
            del d["order"]
        return {"lines": kept, "omitted": len(merged) - len(kept),
                "n_warnings": sum(d["count"] for d in merged.values() if d["class"] == "warning"),
                "n_errors": sum(d["count"] for d in merged.values() if d["class"] == "error"),
                "casa_log": str(self.casa_log) if self.casa_log else ""}


class _ListHandler(logging.Handler):
    """Appends solarpipe's log records to a list (the stage's excerpt)."""

    def __init__(self, sink: list[dict[str, Any]]) -> None:
        super().__init__(level=logging.INFO)
        self.sink = sink

    def emit(self, record: logging.LogRecord) -> None:
        try:
            msg = record.getMessage()
        except Exception:  # noqa: BLE001 - a bad log call must not break the stage
            msg = str(record.msg)
        self.sink.append({"source": "solarpipe", "level": record.levelname, "origin": record.name,
                          "message": msg[:500]})
