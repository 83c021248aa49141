"""SquidASM's ``LogManager`` (``squidasm.sim.stack.common``): loggers for programs,
under the ``squidasm`` logger of Python's logging."""

from __future__ import annotations

import logging

__all__ = ["LogManager"]


class LogManager:
    """Loggers as SquidASM hands them out."""

    STACK_LOGGER = "squidasm"

    @classmethod
    def get_stack_logger(cls, sub_logger: str | None = None) -> logging.Logger:
        base = logging.getLogger(cls.STACK_LOGGER)
        return base if sub_logger is None else base.getChild(sub_logger)

    @classmethod
    def set_log_level(cls, level: int | str) -> None:
        logging.getLogger(cls.STACK_LOGGER).setLevel(level)

    @classmethod
    def get_log_level(cls) -> int:
        return logging.getLogger(cls.STACK_LOGGER).level

    @classmethod
    def log_to_file(cls, path: str) -> None:
        handler = logging.FileHandler(path, mode="w")
        handler.setFormatter(logging.Formatter("%(levelname)s:%(name)s:%(message)s"))
        logging.getLogger(cls.STACK_LOGGER).addHandler(handler)
