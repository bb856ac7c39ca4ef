"""Numbers in words for an account manager, in English and Dutch.

A reason template is a ``str.format`` string whose fields name a unit after the colon:
``{value:count order|orders}`` gives "1 order" or "2 orders"; ``{value:days}`` gives "12 days",
"6 months" or "3 years"; ``{value:eur}`` "EUR 1,234" (Dutch "EUR 1.234"); ``{value:pct}`` "40%";
``{value:change}`` "down 40%" (Dutch "40% lager"). A field without a unit is text as it is.
"""

from __future__ import annotations

import string
from typing import Literal

Language = Literal["en", "nl"]

_DAYS_PER_MONTH = 365.25 / 12
_UNITS = {"en": {"day": ("day", "days"), "month": ("month", "months"), "year": ("year", "years"),
                 "up": "up {}", "down": "down {}", "same": "unchanged"},
          "nl": {"day": ("dag", "dagen"), "month": ("maand", "maanden"), "year": ("jaar", "jaar"),
                 "up": "{} hoger", "down": "{} lager", "same": "gelijk"}}


def number(value: float, language: Language, decimals: int = 0) -> str:
    """``value`` with thousands grouped and at most ``decimals`` decimals: "1,234.5" in
    English, "1.234,5" in Dutch; a whole number shows no decimals."""
    text = f"{value:,.{decimals}f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    if text == "-0":
        text = "0"
    return text.translate(str.maketrans(",.", ".,")) if language == "nl" else text


def plural(shown: str, one: str, many: str) -> str:
    """The noun after a number as shown: singular after exactly 1, in English and Dutch."""
    return f"{shown} {one if shown == '1' else many}"


def days(value: float, language: Language) -> str:
    """A number of days, in months above 60 days and in years from two years on."""
    units = _UNITS[language]
    if abs(value) <= 60:
        return plural(number(value, language), *units["day"])
    if abs(value) < 730:
        return plural(number(value / _DAYS_PER_MONTH, language), *units["month"])
    return plural(number(value / 365.25, language), *units["year"])


def percent(value: float, language: Language, decimals: int = 0) -> str:
    return f"{number(100 * value, language, decimals)}%"


def change(value: float, language: Language) -> str:
    """A relative change in words: "up 40%", "down 40%", "unchanged"."""
    units = _UNITS[language]
    shown = percent(abs(value), language)
    if shown == "0%":
        return units["same"]
    return (units["up"] if value > 0 else units["down"]).format(shown)


class _Words(string.Formatter):
    def __init__(self, language: Language) -> None:
        self.language = language

    def format_field(self, value: object, format_spec: str) -> str:
        unit, _, nouns = format_spec.partition(" ")
        x = float(value) if unit else 0.0  # type: ignore[arg-type]
        match unit:
            case "":  # a code value in words: "public_sector" as "public sector"
                return str(value).replace("_", " ")
            case "count" | "decimal":
                shown = number(x, self.language, 0 if unit == "count" else 1)
                return plural(shown, *nouns.split("|")) if nouns else shown
            case "eur":
                return f"EUR {number(x, self.language)}"
            case "pct" | "pct1":
                return percent(x, self.language, 0 if unit == "pct" else 1)
            case "change":
                return change(x, self.language)
            case "days":
                return days(x, self.language)
        raise ValueError(f"unknown unit {unit!r} in a reason template")


def render(template: str, value: object, language: Language) -> str:
    """``template`` with ``{value:unit}`` fields filled in ``language``."""
    return _Words(language).format(template, value=value)
