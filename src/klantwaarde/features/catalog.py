"""The declared features: name, family, source, window, type, direction and the words for people.

Every feature is declared here once, with a description and a reason template in English and
Dutch that renders its value for an account manager ("no visit for 5 months"; the units of a
template are in ``words``). The pipeline
computes exactly these columns; a trained model pins the names it used. Windows are in months on
the period grid of ``as_of`` (see ``periods``): "the last 12 months" are the dates after
``months_before(as_of, 12)`` up to and including ``as_of``.

Static customer attributes (industry, region, ...) are declared from the customers table at run
time by ``attribute_feature``; protected attributes never become features.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import pandas as pd

from klantwaarde.features.words import Language, render


@dataclass(frozen=True)
class Feature:
    """One declared feature."""

    name: str
    family: str
    requires: tuple[str, ...]  # "table" or "table.column" that must be present; "category":
    # orders.category, or orders.product_id with products.category
    window_months: int | None  # None: a state at as_of, or a static attribute
    dtype: Literal["float64", "int64", "string", "boolean"]
    riskier: Literal["higher", "lower"] | None  # which direction raises churn risk, if known
    en: str  # description
    nl: str
    reason_en: str  # "{value:unit}" renders the value (``words``); a flag's text when set
    reason_nl: str
    unset_en: str = ""  # a flag that is not set
    unset_nl: str = ""

    def describe(self, language: Language = "en") -> str:
        return self.en if language == "en" else self.nl

    def reason(self, value: object, language: Language = "en") -> str:
        """The value in words, for a person; empty when there is no value."""
        if pd.isna(value):  # type: ignore[call-overload]
            return ""
        if self.dtype == "boolean":  # a flag's words are literal text, never a template
            if value:
                return self.reason_en if language == "en" else self.reason_nl
            return self.unset_en if language == "en" else self.unset_nl
        template = self.reason_en if language == "en" else self.reason_nl
        return render(template, value, language)


def _f(name: str, family: str, requires: tuple[str, ...], window: int | None, dtype: str,
       riskier: str | None, en: str, nl: str, reason_en: str, reason_nl: str,
       unset: tuple[str, str] = ("", "")) -> Feature:
    return Feature(name, family, requires, window, dtype, riskier, en, nl,  # type: ignore[arg-type]
                   reason_en, reason_nl, *unset)


ORDERS = ("orders",)


def _rfm() -> list[Feature]:
    out = []
    for w in (3, 6, 12):
        out.append(_f(f"orders_{w}m", "orders", ORDERS, w, "int64", "lower",
                      f"Orders in the last {w} months (an order: the lines with one order_id and "
                      "date; each line when there is no order_id).",
                      f"Orders in de laatste {w} maanden.",
                      f"{{value:count order|orders}} in the last {w} months",
                      f"{{value:count bestelling|bestellingen}} in de laatste {w} maanden"))
        out.append(_f(f"revenue_{w}m", "orders", ORDERS, w, "float64", "lower",
                      f"Revenue (gross_amount, returns included) in the last {w} months.",
                      f"Omzet (bruto, retouren meegerekend) in de laatste {w} maanden.",
                      f"revenue {{value:eur}} in the last {w} months",
                      f"omzet {{value:eur}} in de laatste {w} maanden"))
    return out


def _trend(name: str, what_en: str, what_nl: str, w: int, en_period: str, nl_period: str
           ) -> Feature:
    return _f(name, "trends", ORDERS, 2 * w, "float64", "lower",
              f"Relative change of {what_en} in the last {w} months against the {w} months "
              f"before: (last - before) / before; empty when the {w} months before had none.",
              f"Relatieve verandering van {what_nl} in de laatste {w} maanden ten opzichte van "
              f"de {w} maanden daarvoor.",
              f"{what_en} {{value:change}} on the {en_period}",
              f"{what_nl} {{value:change}} ten opzichte van het {nl_period}")


FEATURES: tuple[Feature, ...] = (
    # recency, frequency, monetary
    _f("days_since_last_order", "orders", ORDERS, None, "int64", "higher",
       "Days from the last order line on or before as_of to as_of.",
       "Dagen sinds de laatste orderregel.",
       "no order for {value:days}", "{value:days} geen bestelling"),
    *_rfm(),
    _f("avg_order_value_12m", "orders", ORDERS, 12, "float64", "lower",
       "Revenue per order in the last 12 months.", "Omzet per order in de laatste 12 maanden.",
       "{value:eur} per order", "{value:eur} per bestelling"),
    _f("active_months_12m", "orders", ORDERS, 12, "int64", "lower",
       "Of the last 12 monthly periods, how many have an order line.",
       "Aantal van de laatste 12 maanden met een bestelling.",
       "ordered in {value:count} of the last 12 months",
       "besteld in {value:count} van de laatste 12 maanden"),
    _f("lines_per_order_12m", "orders", ("orders.order_id",), 12, "float64", None,
       "Order lines per order in the last 12 months.",
       "Orderregels per order in de laatste 12 maanden.",
       "{value:decimal line|lines} per order", "{value:decimal regel|regels} per bestelling"),
    _f("tenure_days", "orders", ORDERS, None, "int64", "lower",
       "Days from the first order line to as_of.", "Dagen sinds de eerste bestelling.",
       "customer for {value:days}", "{value:days} klant"),
    # trends
    _trend("revenue_trend_3m", "revenue", "omzet", 3, "previous quarter", "vorige kwartaal"),
    _trend("revenue_trend_6m", "revenue", "omzet", 6, "previous half year", "vorige halfjaar"),
    _trend("orders_trend_3m", "orders", "aantal bestellingen", 3, "previous quarter",
           "vorige kwartaal"),
    # net margin after cost-to-serve (the profitability module's figures over 12 months)
    _f("gross_margin_12m", "margin", ORDERS, 12, "float64", "lower",
       "Revenue minus discounts and cost of goods in the last 12 months.",
       "Brutomarge (omzet min kortingen en inkoopwaarde) in de laatste 12 maanden.",
       "gross margin {value:eur} in 12 months", "brutomarge {value:eur} in 12 maanden"),
    _f("cost_to_serve_12m", "margin", ORDERS, 12, "float64", None,
       "Activity-based cost-to-serve in the last 12 months (costs.yaml).",
       "Kosten van bediening in de laatste 12 maanden.",
       "cost-to-serve {value:eur} in 12 months",
       "bedieningskosten {value:eur} in 12 maanden"),
    _f("net_margin_12m", "margin", ORDERS, 12, "float64", "lower",
       "Gross margin minus cost-to-serve in the last 12 months.",
       "Nettomarge na kosten van bediening in de laatste 12 maanden.",
       "net margin {value:eur} in 12 months", "nettomarge {value:eur} in 12 maanden"),
    _f("net_margin_pct_12m", "margin", ORDERS, 12, "float64", "lower",
       "Net margin as a share of revenue in the last 12 months; empty without revenue.",
       "Nettomarge als deel van de omzet in de laatste 12 maanden.",
       "net margin {value:pct} of revenue", "nettomarge {value:pct} van de omzet"),
    *(_f(f"cost_{driver}_12m", "margin", requires, 12, "float64", None,
         f"Cost of {en} in the last 12 months.", f"Kosten van {nl} in de laatste 12 maanden.",
         f"{en} cost {{value:eur}} in 12 months",
         f"kosten van {nl}: {{value:eur}} in 12 maanden")
      for driver, requires, en, nl in (
          ("orders", ORDERS, "orders", "orders"),
          ("order_lines", ORDERS, "order lines", "orderregels"),
          ("invoices", ("invoices",), "invoices", "facturen"),
          ("franco", ORDERS, "small shipments below the franco threshold",
           "zendingen onder de francogrens"),
          ("visits", ("interactions",), "visits", "bezoeken"),
          ("calls", ("interactions",), "calls", "telefoontjes"),
          ("complaints", ("complaints",), "complaints", "klachten"),
          ("late_payment", ("invoices.due_date", "invoices.paid_date"), "late payment",
           "te late betaling"))),
    # discounts
    _f("discount_pct_12m", "discounts", ("orders.discount_amount",), 12, "float64", None,
       "Discounts as a share of revenue in the last 12 months; empty without revenue.",
       "Kortingen als deel van de omzet in de laatste 12 maanden.",
       "discount {value:pct1} of revenue", "korting {value:pct1} van de omzet"),
    _f("stale_discount_12m", "discounts", ("orders.discount_amount",), 12, "float64", None,
       "Discount in the last 12 months beyond what today's turnover band warrants (costs.yaml): "
       "a discount granted at an old turnover level.",
       "Korting boven wat de huidige omzetstaffel rechtvaardigt (verouderde korting).",
       "{value:eur} more discount than its turnover warrants",
       "{value:eur} meer korting dan de omzet rechtvaardigt"),
    # payment behaviour, over the invoices dated in the last 12 months
    _f("avg_days_late_12m", "payment", ("invoices.due_date", "invoices.paid_date"), 12,
       "float64", "higher",
       "Average days paid after the due date (0 when on time), over the last 12 months' "
       "invoices paid by as_of; empty when none is.",
       "Gemiddeld aantal dagen te laat betaald.",
       "pays {value:days} late on average", "betaalt gemiddeld {value:days} te laat"),
    _f("share_paid_late_12m", "payment", ("invoices.due_date", "invoices.paid_date"), 12,
       "float64", "higher",
       "Share paid after the due date, of the last 12 months' invoices paid by as_of.",
       "Deel van de facturen dat te laat is betaald.",
       "{value:pct} of invoices paid late", "{value:pct} van de facturen te laat betaald"),
    _f("overdue_amount", "payment", ("invoices.due_date", "invoices.paid_date"), 12, "float64",
       "higher",
       "Amount of the last 12 months' invoices (positive amounts) due before as_of and not paid "
       "by as_of.",
       "Openstaand bedrag over de vervaldatum.",
       "{value:eur} overdue", "{value:eur} over de vervaldatum"),
    _f("overdue_invoices", "payment", ("invoices.due_date", "invoices.paid_date"), 12, "int64",
       "higher",
       "Number of the invoices counted in overdue_amount.",
       "Aantal facturen over de vervaldatum.",
       "{value:count invoice|invoices} overdue",
       "{value:count factuur|facturen} over de vervaldatum"),
    # attention
    *(_f(f"days_since_last_{kind}", "attention", ("interactions",), None, "int64", "higher",
         f"Days from the last {en_kind} on or before as_of (or from the first order when there "
         f"was none) to as_of.",
         f"Dagen sinds {nl_kind} (of sinds de eerste bestelling).",
         f"no {en_kind} for {{value:days}}", f"{{value:days}} geen {nl_kind}")
      for kind, en_kind, nl_kind in (
          ("visit", "visit", "bezoek"), ("call", "call", "telefonisch contact"),
          ("contact", "contact", "contact"))),
    _f("visits_12m", "attention", ("interactions",), 12, "int64", "lower",
       "Visits (interaction kinds in costs.yaml visit_kinds) in the last 12 months.",
       "Bezoeken in de laatste 12 maanden.",
       "{value:count visit|visits} in 12 months", "{value:count bezoek|bezoeken} in 12 maanden"),
    _f("calls_12m", "attention", ("interactions",), 12, "int64", "lower",
       "Calls (costs.yaml call_kinds) in the last 12 months.",
       "Telefoontjes in de laatste 12 maanden.",
       "{value:count call|calls} in 12 months",
       "{value:count telefoontje|telefoontjes} in 12 maanden"),
    _f("contacts_3m", "attention", ("interactions",), 3, "int64", "lower",
       "Interactions of any kind in the last 3 months.",
       "Contacten (alle soorten) in de laatste 3 maanden.",
       "{value:count contact|contacts} in 3 months",
       "{value:count contact|contacten} in 3 maanden"),
    _f("contacts_12m", "attention", ("interactions",), 12, "int64", "lower",
       "Interactions of any kind in the last 12 months.",
       "Contacten (alle soorten) in de laatste 12 maanden.",
       "{value:count contact|contacts} in 12 months",
       "{value:count contact|contacten} in 12 maanden"),
    _f("contacts_vs_norm_12m", "attention", ("interactions",), 12, "float64", "lower",
       "Contacts in the last 12 months divided by the average of the active customers of the "
       "same size (revenue quintile over 12 months) at as_of; empty when that average is 0.",
       "Contacten ten opzichte van het gemiddelde voor klanten van dezelfde omvang.",
       "contact at {value:pct} of the norm for its size",
       "contact op {value:pct} van de norm voor zijn omvang"),
    # complaints
    _f("complaints_3m", "complaints", ("complaints",), 3, "int64", "higher",
       "Complaints opened in the last 3 months.", "Klachten in de laatste 3 maanden.",
       "{value:count complaint|complaints} in the last 3 months",
       "{value:count klacht|klachten} in de laatste 3 maanden"),
    _f("complaints_12m", "complaints", ("complaints",), 12, "int64", "higher",
       "Complaints opened in the last 12 months.", "Klachten in de laatste 12 maanden.",
       "{value:count complaint|complaints} in the last 12 months",
       "{value:count klacht|klachten} in de laatste 12 maanden"),
    _f("open_complaints", "complaints", ("complaints.closed_on",), 12, "int64", "higher",
       "Complaints opened in the last 12 months and not closed by as_of.",
       "Openstaande klachten.",
       "{value:count open complaint|open complaints}",
       "{value:count openstaande klacht|openstaande klachten}"),
    _f("avg_days_to_close_12m", "complaints", ("complaints.closed_on",), 12, "float64",
       "higher",
       "Average days from opening to closing, of the complaints opened in the last 12 months "
       "and closed by as_of; empty when none is.",
       "Gemiddelde doorlooptijd van klachten in dagen.",
       "complaints took {value:days} to close",
       "klachten duurden gemiddeld {value:days}"),
    # product breadth and white space ("bought": an order line with gross_amount > 0)
    _f("categories_12m", "breadth", ("category",), 12, "int64", "lower",
       "Product categories bought in the last 12 months.",
       "Productgroepen gekocht in de laatste 12 maanden.",
       "buys {value:count category|categories}",
       "koopt {value:count productgroep|productgroepen}"),
    _f("categories_ever", "breadth", ("category",), None, "int64", "lower",
       "Product categories ever bought up to as_of.", "Productgroepen ooit gekocht.",
       "bought {value:count category|categories} so far",
       "kocht tot nu toe {value:count productgroep|productgroepen}"),
    _f("white_space_12m", "breadth", ("category",), 12, "float64", None,
       "Sum, over the categories not bought in the last 12 months, of the share of the active "
       "customers in the same industry that did buy them: the categories similar customers buy "
       "and this one does not.",
       "Witte vlek: productgroepen die vergelijkbare klanten wel kopen en deze klant niet.",
       "misses {value:decimal category|categories} that similar customers buy",
       "mist {value:decimal productgroep|productgroepen} die vergelijkbare klanten kopen"),
)

BY_NAME = {f.name: f for f in FEATURES}


def owns_feature(category: str) -> Feature:
    """The declaration of "bought this category up to as_of", one per product category: the
    next-best categories are those a customer does not own yet."""
    return _f(f"owns__{category}", "breadth", ("category",), None, "boolean", None,
              f"Bought category {category} (an order line with gross_amount > 0) up to as_of.",
              f"Heeft ooit categorie {category} gekocht.",
              f"already buys {category}", f"koopt al {category}",
              (f"does not buy {category} yet", f"koopt nog geen {category}"))


# the words of the usual customers columns, (English, Dutch); a flag's when set and unset
_TEXTS = {"industry": ("in {value}", "branche {value}"),
          "region": ("in region {value}", "in regio {value}"),
          "size_class": ("size class {value}", "grootteklasse {value}")}
_FLAGS = {"strategic": (("strategic account", "strategisch account"),
                        ("not a strategic account", "geen strategisch account"))}


def attribute_feature(column: str, dtype: str) -> Feature:
    """The declaration of a static attribute column of the customers table; its reason names
    the column in words ("size class small"), never as the column is spelled."""
    if column == "acquired_on":
        return _f("account_age_days", "static", ("customers.acquired_on",), None, "int64",
                  None, "Days from customers.acquired_on to as_of; empty when it lies after.",
                  "Dagen sinds de klant is binnengehaald.",
                  "account opened {value:days} ago", "account {value:days} geleden geopend")
    words = column.replace("_", " ").strip()
    unset = ("", "")
    if dtype == "boolean":
        (en, nl), unset = _FLAGS.get(column, ((f"{words}: yes", f"{words}: ja"),
                                              (f"{words}: no", f"{words}: nee")))
    else:
        shown = "{value:decimal}" if dtype == "float64" else "{value}"
        en, nl = _TEXTS.get(column, (f"{words} {shown}", f"{words} {shown}"))
    return _f(column, "static", (f"customers.{column}",), None, dtype, None,
              f"Customer attribute {column}.", f"Klantkenmerk {column}.", en, nl, unset)
