"""The one build-time check of the numeric options of mmrm's components.

A NaN passes every comparison-only check (``nan < 0`` is False, so ``omega=nan`` trained with a
NaN loss from step 1), an infinity passes ``value >= 0``, and Python takes ``True`` for 1.
:func:`check_number` (one value) and :func:`check_numbers` (a list) refuse all three, and any
value out of range, with one message naming the component, the option and what is allowed::

    RoIConsistencyHead: omega must be a finite number >= 0, got nan
"""
import math
import numbers
from typing import Optional, Sequence, Union

Number = Union[int, float]


def describe_range(low: Optional[Number] = None, high: Optional[Number] = None,
                   low_open: bool = False, high_open: bool = False) -> str:
    """``'in (0, 1]'``, ``'>= 0'``, ``'< 1'``, or ``''`` (any finite number)."""
    if low is not None and high is not None:
        return f"in {'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"
    if low is not None:
        return f"{'>' if low_open else '>='} {low:g}"
    if high is not None:
        return f"{'<' if high_open else '<='} {high:g}"
    return ''


def _kind(integer: bool, bounded: bool, plural: bool = False) -> str:
    # a range bounded on both sides already says "finite"
    kind = 'int' if integer else 'number' if bounded else 'finite number'
    return kind + 's' if plural else ('an ' if integer else 'a ') + kind


def is_number(value, low: Optional[Number] = None, high: Optional[Number] = None,
              low_open: bool = False, high_open: bool = False, integer: bool = False) -> bool:
    """Whether ``value`` is a finite real number (an integral one with ``integer``), not a
    bool, within the range."""
    if isinstance(value, bool) or not isinstance(
            value, numbers.Integral if integer else numbers.Real):
        return False
    if not math.isfinite(value):
        return False
    if low is not None and not (value > low if low_open else value >= low):
        return False
    return high is None or (value < high if high_open else value <= high)


def check_number(owner: str, name: str, value, low: Optional[Number] = None,
                 high: Optional[Number] = None, *, low_open: bool = False,
                 high_open: bool = False, integer: bool = False, hint: str = '') -> Number:
    """``value`` as a float (an int with ``integer``) if :func:`is_number`; else a ValueError
    ``'{owner}: {name} must be a finite number >= 0 ({hint}), got {value!r}'``."""
    if not is_number(value, low, high, low_open, high_open, integer):
        bounded = low is not None and high is not None
        allowed = ' '.join(filter(None, (_kind(integer, bounded),
                                         describe_range(low, high, low_open, high_open))))
        raise ValueError(f'{owner}: {name} must be {allowed}'
                         f"{f' ({hint})' if hint else ''}, got {value!r}")
    return int(value) if integer else float(value)


def check_numbers(owner: str, name: str, values, low: Optional[Number] = None,
                  high: Optional[Number] = None, *, low_open: bool = False,
                  high_open: bool = False, integer: bool = False, length: Optional[int] = None,
                  hint: str = '') -> tuple:
    """A non-empty list / tuple of numbers (``length`` of them when given) each passing
    :func:`is_number`, as a tuple of floats (ints); else a ValueError naming the option."""
    ok = (isinstance(values, Sequence) and not isinstance(values, str) and len(values) > 0
          and (length is None or len(values) == length)
          and all(is_number(v, low, high, low_open, high_open, integer) for v in values))
    if not ok:
        bounded = low is not None and high is not None
        allowed = ' '.join(filter(None, (
            'a list of', str(length) if length is not None else '',
            _kind(integer, bounded, plural=True), describe_range(low, high, low_open, high_open))))
        raise ValueError(f'{owner}: {name} must be {allowed}'
                         f"{f' ({hint})' if hint else ''}, got {values!r}")
    return tuple(int(v) if integer else float(v) for v in values)
