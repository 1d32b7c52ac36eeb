"""Programmer-error checks that survive ``python -O``.

A failed invariant means the engine (or its caller) is wrong, not the user: the worker must abort the
transaction rather than settle from a corrupt book.
"""


class InvariantViolation(Exception):
    """An internal consistency rule of the matching engine was broken."""


def invariant(cond: object, msg: str) -> None:
    if not cond:
        raise InvariantViolation(msg)
