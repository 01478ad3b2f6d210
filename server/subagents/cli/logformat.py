"""Log lines on stderr: the human format (the default), or `--log-format json`, one JSON object a line that
carries the run id and trace id of the run it belongs to."""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime

from subagents.telemetry import current_ids

FORMATS = ("text", "json")
TEXT = "subagents %(levelname)s %(name)s: %(message)s"


class JsonFormatter(logging.Formatter):
    """One JSON object per record, for log collectors; a traceback rides in `exception`."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        run_id, trace_id = current_ids()
        if run_id is not None:
            entry["run_id"] = run_id
        if trace_id is not None:
            entry["trace_id"] = trace_id
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


def setup_logging(verbose: int, log_format: str = "text") -> None:
    """Every log line to stderr (stdout may be JSON-RPC), in the format asked for."""
    level = logging.DEBUG if verbose > 1 else logging.INFO if verbose else logging.WARNING
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if log_format == "json" else logging.Formatter(TEXT))
    logging.basicConfig(level=level, handlers=[handler])
    if verbose < 2:  # one line per HTTP request is noise at -v; -vv shows it
        for name in ("httpx", "httpx2", "httpcore", "anthropic"):
            logging.getLogger(name).setLevel(logging.WARNING)
