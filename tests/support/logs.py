"""What Luffy's loggers emit, for a test: Litestar's logging config routes records past pytest's caplog."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager


class LogRecords(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    @property
    def messages(self) -> list[str]:
        return [record.getMessage() for record in self.records]

    @property
    def text(self) -> str:
        return "\n".join(
            record.getMessage() + (f"\n{record.exc_info}" if record.exc_info else "") for record in self.records
        )


@contextmanager
def captured_logs(*logger_names: str) -> Iterator[LogRecords]:
    """The records of these loggers (and their children) while the block runs."""
    records = LogRecords()
    loggers = [logging.getLogger(name) for name in logger_names]
    for logger in loggers:
        logger.addHandler(records)
    try:
        yield records
    finally:
        for logger in loggers:
            logger.removeHandler(records)
