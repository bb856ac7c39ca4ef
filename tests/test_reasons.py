"""Reasons a sales rep can read: every declared feature in words, in English and Dutch, with
correct plurals and numbers; cross-sell reasons that say why the category."""

from __future__ import annotations

import re

import ibis
import numpy as np
import pandas as pd
import pytest

from klantwaarde.features.catalog import FEATURES, Feature, attribute_feature, owns_feature
from klantwaarde.features.words import days, number
from klantwaarde.scoring.reasons import peer_reasons, peer_shares, top_reasons

ATTRIBUTES = [attribute_feature(c, t) for c, t in (
    ("industry", "string"), ("region", "string"), ("size_class", "string"),
    ("strategic", "boolean"), ("acquired_on", "int64"), ("employee_count", "float64"),
    ("payment_terms", "string"), ("has_webshop", "boolean"))]
DECLARED = [*FEATURES, owns_feature("paint"), *ATTRIBUTES]
NUMBERS = [0, 1, 2, 1.5, 45, 61, 186, 400, 12_345.6, -0.4, -2]
# the nouns a template counts, (singular, plural); "jaar" is both in Dutch ("3 jaar")
NOUNS = {"en": [("order", "orders"), ("day", "days"), ("month", "months"), ("year", "years"),
                ("line", "lines"), ("invoice", "invoices"), ("visit", "visits"),
                ("call", "calls"), ("contact", "contacts"), ("complaint", "complaints"),
                ("open complaint", "open complaints"), ("category", "categories")],
         "nl": [("bestelling", "bestellingen"), ("dag", "dagen"), ("maand", "maanden"),
                ("regel", "regels"), ("factuur", "facturen"), ("bezoek", "bezoeken"),
                ("telefoontje", "telefoontjes"), ("contact", "contacten"), ("klacht", "klachten"),
                ("openstaande klacht", "openstaande klachten"),
                ("productgroep", "productgroepen")]}


def _values(feature: Feature) -> list[object]:
    if feature.dtype == "boolean":
        return [True, False, 1.0, 0.0]
    if feature.dtype == "string":
        return ["wholesale", "small"]
    return NUMBERS


@pytest.mark.parametrize("language", ["en", "nl"])
@pytest.mark.parametrize("feature", DECLARED, ids=lambda f: f.name)
def test_every_feature_reads_as_a_sentence(feature: Feature, language: str) -> None:
    for value in _values(feature):
        text = feature.reason(value, language)  # type: ignore[arg-type]
        assert text, (feature.name, value)
        assert "_" not in text, text  # so no feature or column name as it is spelled
        assert "{" not in text and "}" not in text, text
        for one, many in NOUNS[language]:
            assert not re.search(rf"(?<![\d.,])1 {many}\b", text), text
            assert not re.search(rf"(?<![\d.,-])(?:[02-9]|1[.,]5) {one}\b", text), text
        if isinstance(value, float) and value == 12_345.6:  # thousands grouped per language
            assert not re.search(r"\d{4}", text), text
            wrong = r"\d,\d{3}\b" if language == "nl" else r"\d\.\d{3}\b"
            assert not re.search(wrong, text), text
        if value == 1.5:  # a decimal comma in Dutch, a point in English
            assert ("1.5" if language == "nl" else "1,5") not in text, text


@pytest.mark.parametrize("language", ["en", "nl"])
def test_a_missing_value_gives_no_reason(language: str) -> None:
    for feature in DECLARED:
        assert feature.reason(None, language) == "" == feature.reason(np.nan, language)  # type: ignore[arg-type]


def test_examples_in_both_languages() -> None:
    by_name = {f.name: f for f in DECLARED}

    def both(name: str, value: object) -> tuple[str, str]:
        return by_name[name].reason(value, "en"), by_name[name].reason(value, "nl")

    assert both("days_since_last_order", 186) == ("no order for 6 months",
                                                  "6 maanden geen bestelling")
    assert both("days_since_last_visit", 45) == ("no visit for 45 days", "45 dagen geen bezoek")
    assert both("tenure_days", 1100) == ("customer for 3 years", "3 jaar klant")
    assert both("orders_3m", 1) == ("1 order in the last 3 months",
                                    "1 bestelling in de laatste 3 maanden")
    assert both("orders_3m", 2) == ("2 orders in the last 3 months",
                                    "2 bestellingen in de laatste 3 maanden")
    assert both("revenue_trend_6m", -0.4) == (
        "revenue down 40% on the previous half year",
        "omzet 40% lager ten opzichte van het vorige halfjaar")
    assert both("orders_trend_3m", 0.25)[0] == "orders up 25% on the previous quarter"
    assert both("revenue_trend_3m", 0.001)[0] == "revenue unchanged on the previous quarter"
    assert both("revenue_12m", 1234567.8) == ("revenue EUR 1,234,568 in the last 12 months",
                                              "omzet EUR 1.234.568 in de laatste 12 maanden")
    assert both("discount_pct_12m", 0.125) == ("discount 12.5% of revenue",
                                               "korting 12,5% van de omzet")
    assert both("lines_per_order_12m", 1.0)[1] == "1 regel per bestelling"
    assert both("size_class", "small") == ("size class small", "grootteklasse small")
    assert both("industry", "wholesale") == ("in wholesale", "branche wholesale")
    assert both("strategic", False) == ("not a strategic account", "geen strategisch account")
    assert both("account_age_days", 38) == ("account opened 38 days ago",
                                            "account 38 dagen geleden geopend")
    assert both("payment_terms", "net30")[0] == "payment terms net30"
    assert both("industry", "public_sector")[0] == "in public sector"


def test_numbers_days_and_plurals() -> None:
    assert number(1234.5, "en", 1) == "1,234.5" and number(1234.5, "nl", 1) == "1.234,5"
    assert number(2.0, "en", 1) == "2" and number(-0.2, "en") == "0"
    assert [days(d, "en") for d in (1, 60, 61, 729, 730)] == [
        "1 day", "60 days", "2 months", "24 months", "2 years"]
    assert days(30.4 * 12, "nl") == "12 maanden" and days(400, "nl") == "13 maanden"


def test_cross_sell_reasons_say_why_the_category() -> None:
    frame = pd.DataFrame({"industry": ["wholesale"] * 4 + ["retail"] * 2 + [None],
                          "owns__paint": [True, True, True, False, False, False, True],
                          "owns__tools": [False, True, False, False, False, True, False]})
    chosen = [[], [], [], ["paint", "tools"], ["paint", "tools"], [], ["tools"]]
    shares = peer_shares(ibis.memtable(frame))
    industries = list(frame.industry)
    assert peer_reasons(chosen, industries, shares, "en") == [
        None, None, None, "75% of customers in wholesale buy paint; this one never has",
        None,  # no retailer bought paint: no reason from its peers
        None, "29% of customers buy tools; this one never has"]  # no industry: everyone
    assert peer_reasons(chosen, industries, shares, "nl")[3] == \
        "75% van de klanten in de branche wholesale kopen paint; deze klant nog nooit"
    everyone = peer_shares(ibis.memtable(frame.drop(columns="industry")))
    assert peer_reasons(chosen[3:4], [None], everyone, "nl")[0] == \
        "57% van de klanten kopen paint; deze klant nog nooit"
    # a code is written as words
    coded = frame.assign(industry=frame.industry.replace("wholesale", "public_sector"))
    assert peer_reasons([chosen[3], chosen[5]], ["public_sector", "retail"],
                        peer_shares(ibis.memtable(coded)), "en") == [
        "75% of customers in public sector buy paint; this one never has", None]


def test_a_discount_or_cost_is_never_a_reason_to_sell_more() -> None:
    names = ["stale_discount_12m", "cost_visits_12m", "categories_12m", "discount_pct_12m"]
    declared = {f.name: f for f in FEATURES}
    frame = pd.DataFrame({"stale_discount_12m": [50.0], "cost_visits_12m": [800.0],
                          "categories_12m": [2.0], "discount_pct_12m": [0.1]})
    push = np.array([[2.0, 1.5, 0.3, 1.0, 0.0]])
    assert top_reasons("upgrade", push, names, frame, declared, 3, "en") == [
        ["buys 2 categories"]]
    assert top_reasons("churn", push, names, frame, declared, 2, "en") == [
        ["EUR 50 more discount than its turnover warrants", "visits cost EUR 800 in 12 months"]]
