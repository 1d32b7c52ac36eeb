"""Programmer-error checks that survive ``python -O``.

A failed invariant means the engine (or its caller) is wrong, not the user: the worker must abort the
transaction rather than settle from a corrupt book.
"""
from typing import TypeVar

T = TypeVar("T")


class InvariantViolation(Exception):
    """An internal consistency rule of the matching engine was broken."""


def invariant(cond: object, msg: str) -> None:
    if not cond:
        raise InvariantViolation(msg)


def present(value: T | None, msg: str) -> T:
    """``value``, which is never None by construction: ``invariant(value is not None, msg)`` that also
    tells the type checker so (a call of ``invariant`` narrows nothing)."""
    if value is None:
        raise InvariantViolation(msg)
    return value
