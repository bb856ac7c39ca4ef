"""Typed configuration: YAML files, one per section, loaded into frozen pydantic models.

The defaults are the YAML files shipped in ``klantwaarde/configs`` (the repository's ``configs/``).
A user's ``--config`` folder holds some of the same files; each key it sets replaces the default,
keys it leaves out keep the default. Unknown or mistyped keys are errors naming file and key.
"""

from __future__ import annotations

import datetime as dt
import difflib
import math
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal, get_args, get_origin

import yaml
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, model_validator

from klantwaarde.errors import ConfigError


class Section(BaseModel):
    """Base of every configuration section: frozen, and unknown keys are errors."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class SourceConfig(Section):
    """How CSV files of a folder source are read, and how much memory the embedded DuckDB
    engine may hold (``None``: DuckDB's own limit, 80% of the machine's memory)."""

    encoding: Literal["utf-8", "latin-1", "utf-16"]
    decimal_separator: Literal["auto", ".", ","]
    date_format: Literal["auto", "YYYY-MM-DD", "DD-MM-YYYY", "DD.MM.YYYY", "DD/MM/YYYY",
                         "MM/DD/YYYY"]
    memory_limit: Annotated[str, Field(pattern=r"^[0-9]+(\.[0-9]+)? ?[KMGT]i?B$")] | None


class Invalid(ValueError):
    """A validator's finding about one value inside the validated one: ``key`` is the path from
    the validated value to it (keys and list positions), so that the error names it."""

    def __init__(self, key: tuple[str | int, ...], message: str) -> None:
        super().__init__(message)
        self.key = key


def _unknown(what: str, word: str, where: str, options: Any) -> str:
    """``unknown WHAT; WHERE has a, b. Did you mean 'a'?``"""
    return f"unknown {what}; {where} has {', '.join(options)}." + did_you_mean(word, options)


class ContractConfig(Section):
    """Settings of the data-contract checks."""

    protected_attributes: tuple[str, ...]
    isolated_date_gap_days: int = Field(gt=0)
    example_rows: int = Field(gt=0, le=50)


def _shares(value: dict[str, float]) -> dict[str, float]:
    if any(v < 0 for v in value.values()) or not math.isclose(sum(value.values()), 1.0,
                                                              abs_tol=1e-6):
        given = ", ".join(f"{k} {v:g}" for k, v in value.items())
        raise ValueError(f"shares must be non-negative and add up to 1; {given} add up to "
                         f"{sum(value.values()):g}")
    return value


def _bounds(value: tuple[float, float]) -> tuple[float, float]:
    if value[0] > value[1]:
        raise ValueError(f"the lower bound {value[0]} exceeds the upper bound {value[1]}")
    return value


Shares = Annotated[dict[str, float], AfterValidator(_shares)]
Bounds = Annotated[tuple[float, float], AfterValidator(_bounds)]
Share = Annotated[float, Field(ge=0, le=1)]
Positive = Annotated[float, Field(gt=0)]
NonNegative = Annotated[float, Field(ge=0)]


class DiscountBand(Section):
    min_turnover: NonNegative
    discount: Share


def _bands_ascend(bands: tuple[DiscountBand, ...]) -> tuple[DiscountBand, ...]:
    starts = [b.min_turnover for b in bands]
    if starts[0] != 0 or starts != sorted(set(starts)):
        raise ValueError("the bands must start at min_turnover 0 and ascend (they start at "
                         f"{', '.join(f'{s:g}' for s in starts)})")
    return bands


class CostsConfig(Section):
    """Activity-based cost rates (EUR) and the discount each turnover band warrants."""

    per_order: NonNegative
    per_order_line: NonNegative
    per_invoice: NonNegative
    franco_threshold: NonNegative
    per_franco_shipment: NonNegative
    per_visit: NonNegative
    per_call: NonNegative
    per_complaint: NonNegative
    late_payment_interest_per_year: NonNegative
    per_reminder: NonNegative
    max_reminders: int = Field(ge=0)
    default_gross_margin: Share
    discount_bands: Annotated[tuple[DiscountBand, ...], Field(min_length=1),
                              AfterValidator(_bands_ascend)]
    visit_kinds: tuple[str, ...]
    call_kinds: tuple[str, ...]


class PopulationParams(Section):
    active_at_start: Share
    median_monthly_spend: Positive
    size_sigma: Positive
    strategic_share: Share
    customers_per_manager: int = Field(gt=0)
    workload_spread: Positive
    industries: Shares
    regions: Shares
    contact_gender: Shares
    size_classes: dict[str, NonNegative]


class OrderingParams(Section):
    orders_per_month: Positive
    frequency_elasticity: float
    small_frequent_share: Share
    small_frequent_factor: Positive
    lines_per_order: Annotated[float, Field(ge=1)]
    lines_elasticity: float
    return_share: Share
    seasonality: tuple[Positive, ...] = Field(min_length=12, max_length=12)
    channels: Shares


class CatalogParams(Section):
    products_per_category: int = Field(gt=0)
    category_margins: dict[str, Share] = Field(min_length=1)
    median_unit_cost: Positive
    unit_cost_sigma: NonNegative


class DiscountParams(Section):
    stale_share: Share
    stale_turnover_factor: Bounds


class PaymentClass(Section):
    share: Share
    mean_days_late: NonNegative


def _class_shares(classes: dict[str, PaymentClass]) -> dict[str, PaymentClass]:
    _shares({name: c.share for name, c in classes.items()})
    return classes


class PaymentParams(Section):
    terms_days: int = Field(ge=0)
    classes: Annotated[dict[str, PaymentClass], Field(min_length=1),
                       AfterValidator(_class_shares)]


class ContactParams(Section):
    visits_per_year: dict[str, NonNegative]
    calls_per_year: dict[str, NonNegative]
    tolerated_months: dict[str, Positive]
    emails_per_year: NonNegative
    workload_elasticity: float
    manager_habit_sigma: NonNegative
    friendly_share: Share
    friendly_visits_per_year: NonNegative


class ComplaintParams(Section):
    per_order: NonNegative
    heavy_share: Share
    heavy_factor: Positive
    categories: Shares
    mean_days_to_close: Positive
    promised_days: int = Field(gt=0)
    never_closed_share: Share


class ChurnParams(Section):
    base_monthly_hazard: Annotated[float, Field(gt=0, lt=1)]
    neglect: NonNegative
    neglect_cap: NonNegative
    open_complaint: NonNegative
    broken_promise: NonNegative
    price: NonNegative
    contact_protection: NonNegative
    protection_months: Positive
    responsiveness_shape: Positive
    stop_share: Share
    drying_factor: Bounds
    dried_up_below: Share


class CrossSellParams(Section):
    initial_categories: Positive
    monthly_adoption: Share
    contact_factor: Positive
    affinity: dict[str, dict[str, Positive]]


class SimulateConfig(Section):
    """Parameters of the customer-base simulator; each mechanism is documented in the YAML."""

    start: dt.date
    chunk_customers: int = Field(gt=0)
    population: PopulationParams
    ordering: OrderingParams
    catalog: CatalogParams
    discounts: DiscountParams
    payment: PaymentParams
    contact: ContactParams
    complaints: ComplaintParams
    churn: ChurnParams
    cross_sell: CrossSellParams

    @model_validator(mode="after")
    def _consistent(self) -> SimulateConfig:
        classes = list(self.population.size_classes)
        for name in ("visits_per_year", "calls_per_year", "tolerated_months"):
            given = getattr(self.contact, name)
            for key in given:
                if key not in classes:
                    raise Invalid(("contact", name, key), _unknown(
                        "size class", key, "population.size_classes", classes))
            lacking = [c for c in classes if c not in given]
            if lacking:
                raise Invalid(("contact", name), f"lacks the size class(es) "
                              f"{', '.join(lacking)} of population.size_classes")
        categories = list(self.catalog.category_margins)
        industries = list(self.population.industries)
        for industry, affinity in self.cross_sell.affinity.items():
            if industry not in industries:
                raise Invalid(("cross_sell", "affinity", industry), _unknown(
                    "industry", industry, "population.industries", industries))
            for category in affinity:
                if category not in categories:
                    raise Invalid(("cross_sell", "affinity", industry, category), _unknown(
                        "category", category, "catalog.category_margins", categories))
        return self


class PyramidTier(Section):
    tier: str
    revenue_share: Annotated[float, Field(gt=0, le=1)]


def _pyramid(tiers: tuple[PyramidTier, ...]) -> tuple[PyramidTier, ...]:
    """Unique tier names other than ``inactive``, and bounds that ascend to 1."""
    for i, tier in enumerate(tiers):
        if tier.tier == "inactive":
            raise Invalid((i, "tier"), "'inactive' is the tier of the customers without "
                          "revenue; give this tier another name")
        if tier.tier in [t.tier for t in tiers[:i]]:
            raise Invalid((i, "tier"), f"'{tier.tier}' names an earlier tier too; tier names "
                          "must be unique")
        if i and tier.revenue_share <= tiers[i - 1].revenue_share:
            raise Invalid((i, "revenue_share"), f"{tier.revenue_share:g} does not exceed the "
                          f"bound of the tier before ({tiers[i - 1].revenue_share:g}); the "
                          "bounds must ascend")
    if tiers[-1].revenue_share != 1:
        raise Invalid((len(tiers) - 1, "revenue_share"), "the last tier's bound must be 1 (all "
                      f"revenue), not {tiers[-1].revenue_share:g}")
    return tiers


class ProfitabilityConfig(Section):
    """The window of the figures, the customer pyramid and the significance criterion."""

    window_months: int = Field(gt=0, le=120)
    pyramid: Annotated[tuple[PyramidTier, ...], Field(min_length=1), AfterValidator(_pyramid)]
    significant_tiers: tuple[str, ...]

    @model_validator(mode="after")
    def _significant(self) -> ProfitabilityConfig:
        names = [t.tier for t in self.pyramid]
        for i, name in enumerate(self.significant_tiers):
            if name not in names:
                raise Invalid(("significant_tiers", i),
                              _unknown("tier", name, "the pyramid", names))
        return self


class ChurnLabel(Section):
    definition: Literal["no_order", "dry_up"]
    dry_up_fraction: Annotated[float, Field(gt=0, le=1)]
    dry_up_baseline_months: Annotated[int, Field(ge=1, le=36)]


class UpgradeLabel(Section):
    min_category_amount: NonNegative
    growth: NonNegative


class LabelsConfig(Section):
    """Eligibility, the horizon and the definitions of the churn and upgrade labels."""

    active_months: int = Field(gt=0, le=120)
    horizon_months: int = Field(gt=0, le=60)
    churn: ChurnLabel
    upgrade: UpgradeLabel


class TreeParams(Section):
    max_depth: int = Field(gt=0, le=12)
    min_samples_leaf: int = Field(gt=0)


class XGBoostParams(Section):
    max_rounds: dict[Literal["churn", "margin", "upgrade"], Annotated[int, Field(gt=0)]]
    early_stopping_rounds: int = Field(gt=0)
    search: dict[Literal["max_depth", "learning_rate", "min_child_weight", "subsample",
                         "colsample_bytree", "reg_lambda"],
                 Annotated[tuple[float, ...], Field(min_length=1)]]
    subsample: Annotated[float, Field(gt=0, le=1)]
    colsample_bytree: Annotated[float, Field(gt=0, le=1)]
    min_child_weight: NonNegative
    margin_huber_quantile: Annotated[float, Field(gt=0, lt=1)]


class CampaignConfig(Section):
    """The retention campaign behind the expected maximum profit."""

    customer_lifetime_value: Positive
    incentive_cost: NonNegative
    contact_cost: NonNegative
    acceptance_alpha: Positive
    acceptance_beta: Positive


class ResponseParams(Section):
    """The response model's bases and its overlap rule."""

    min_propensity: Annotated[float, Field(ge=0, lt=0.5)]
    rounds: int = Field(gt=0)
    max_depth: int = Field(gt=0, le=12)
    learning_rate: Positive


class SelectionConfig(Section):
    churn: Literal["roc_auc", "pr_auc", "emp_per_customer", "lift_top10"]
    margin: Literal["normalized_gini", "spearman"]
    upgrade: Literal["mean_roc_auc"]
    response: Literal["what_if", "qini", "uplift_top10"]


class PromotionConfig(Section):
    automatic: bool
    min_improvement: NonNegative


class ModelsConfig(Section):
    """Data sets, candidates, metrics, selection and promotion of ``klantwaarde train``."""

    seed: int = Field(ge=0)
    train_snapshots: int = Field(gt=0, le=120)
    validation_snapshots: int = Field(gt=0, le=12)
    tree: TreeParams
    xgboost: XGBoostParams
    response: ResponseParams
    campaign: CampaignConfig
    next_best_k: int = Field(gt=0)
    selection: SelectionConfig
    promotion: PromotionConfig
    store: Path
    experiment: str = Field(min_length=1)


class ScoringConfig(Section):
    """Where ``klantwaarde score`` writes and how long it waits for a reader to close the
    scores table, how it words its reasons, when it warns of drift, and the retention goal
    ``klantwaarde evaluate`` holds the realised retention against."""

    store: Path
    parquet: Path
    lock_wait_seconds: NonNegative
    language: Literal["en", "nl"]
    reasons: int = Field(ge=0, le=10)
    reasons_for: Literal["listed", "all"]
    psi_warning: Positive
    retention_goal: Share


class Capacity(Section):
    """Contacts (visits and calls) an account manager can make in a month: ``managers``
    overrides the source's managers table, which overrides ``default``."""

    default: int = Field(ge=0)
    managers: dict[str, Annotated[int, Field(ge=0)]] = {}


class ListsConfig(Section):
    """Who goes on the lists of ``klantwaarde lists``, and how many per account manager."""

    capacity: Capacity
    contact: Literal["call", "visit"]
    control_share: Annotated[float, Field(ge=0, le=0.5)]
    control_seed: int
    win_back_after_days: int = Field(gt=0)
    at_risk_min_probability: Share
    cross_sell_min_margin: float
    cross_sell_attributable: Share
    unassigned: str = Field(pattern=r"\S")


class WebConfig(Section):
    """The account managers' page of ``klantwaarde serve``: its database, sessions, login
    throttle and how often it looks for a newer scored month."""

    database: str | None = Field(default=None, min_length=1)
    report: str = Field(min_length=1)
    session_hours: Positive
    idle_minutes: Positive
    secure_cookies: Literal["auto", "always"]
    login_failures: int = Field(gt=0)
    client_failures: int = Field(gt=0)
    failure_window_minutes: Positive
    reload_seconds: NonNegative
    history_months: int = Field(gt=0, le=60)


class Config(Section):
    """The whole configuration, one attribute per YAML file."""

    source: SourceConfig
    contract: ContractConfig
    costs: CostsConfig
    profitability: ProfitabilityConfig
    labels: LabelsConfig
    models: ModelsConfig
    scoring: ScoringConfig
    lists: ListsConfig
    simulate: SimulateConfig
    web: WebConfig


SECTIONS: dict[str, type[Section]] = {
    name: field.annotation for name, field in Config.model_fields.items()  # type: ignore[misc]
}


def default_config_dir() -> Path:
    """The folder of default YAML files shipped inside the package."""
    return Path(str(resources.files("klantwaarde") / "configs"))


def load_config(path: Path | None = None) -> Config:
    """Load the defaults, overlay the YAML files at ``path`` (a folder or one section file)."""
    raw = {name: read_yaml(default_config_dir() / f"{name}.yaml") for name in SECTIONS}
    origin = {name: default_config_dir() / f"{name}.yaml" for name in SECTIONS}
    for section, file in _user_files(path):
        user = read_yaml(file)
        raw[section] = merge(raw[section], user)
        origin[section] = file
    sections = {}
    for name, model in SECTIONS.items():
        try:
            sections[name] = model.model_validate(raw[name])
        except ValidationError as exc:
            raise ConfigError(_explain(exc, origin[name], model)) from None
    return Config(**sections)


def _user_files(path: Path | None) -> list[tuple[str, Path]]:
    if path is None:
        return []
    if not path.exists():
        raise ConfigError(f"Configuration {path} does not exist. Pass a folder of YAML files "
                          f"({', '.join(f'{s}.yaml' for s in SECTIONS)}) or one of those files.")
    files = sorted(path.glob("*.y*ml")) if path.is_dir() else [path]
    found = []
    for file in files:
        section = file.stem
        if file.suffix not in (".yaml", ".yml") or section not in SECTIONS:
            hint = did_you_mean(section, SECTIONS)
            raise ConfigError(f"{file}: not a configuration file of klantwaarde; the files are "
                              f"{', '.join(f'{s}.yaml' for s in SECTIONS)}.{hint}")
        found.append((section, file))
    return found


def merge(default: dict[str, Any], user: dict[str, Any]) -> dict[str, Any]:
    """``user`` over ``default``, key by key; nested mappings are merged the same way."""
    merged = dict(default)
    for key, value in user.items():
        if isinstance(value, dict) and isinstance(default.get(key), dict):
            merged[key] = merge(default[key], value)
        else:
            merged[key] = value
    return merged


def read_yaml(file: Path) -> dict[str, Any]:
    """The mapping in a YAML file (empty for an empty file); a ConfigError naming the file
    otherwise."""
    try:
        data = yaml.safe_load(file.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{file}: not valid YAML: {exc}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{file}: expected a mapping of keys to values, "
                          f"got {type(data).__name__}.")
    return data


def _explain(exc: ValidationError, file: Path, model: type[Section]) -> str:
    """Every error of ``exc`` on a line of its own: the dotted key, what is wrong, and for an
    unknown key or value the ones allowed there and the closest."""
    errors = [(_located(err), err) for err in exc.errors()]
    errors = [(loc, err) for loc, err in errors if err["type"] != "too_short"
              or not any(other[:len(loc)] == loc != other for other, _ in errors)]
    missing = [loc for loc, err in errors if err["type"] == "missing"]
    lines = [f"{file}: invalid configuration."]
    for loc, err in errors:
        where = f"key '{_dotted(loc)}'" if loc else "the file"
        if err["type"] == "extra_forbidden" or err["loc"][-1:] == ("[key]",):
            allowed = _keys(_type_at(model, loc[:-1]))
            siblings = [str(m[-1]) for m in missing if m[:-1] == loc[:-1]]
            lines.append(f"  {where}: unknown key; allowed keys: {', '.join(allowed)}."
                         + did_you_mean(str(loc[-1]), allowed, siblings))
        elif err["type"] == "missing":
            lines.append(f"  {where}: missing.")
        elif err["type"] == "model_type":
            keys = ", ".join(_keys(_type_at(model, loc)))
            lines.append(f"  {where}: expected a mapping with the keys {keys}{_got(err)}.")
        else:
            message = str(err["msg"]).removeprefix("Value error, ")
            hint = (did_you_mean(str(err["input"]), get_args(_type_at(model, loc)))
                    if err["type"] == "literal_error" else "")
            text = f"{message}{_got(err)}"
            lines.append(f"  {where}: {text}{'' if text.endswith(('.', '?')) else '.'}{hint}")
    return "\n".join(lines)


def _located(err: Any) -> tuple[str | int, ...]:
    """Where an error is: its loc, without pydantic's ``[key]`` marker of a dict key and with
    the key an :class:`Invalid` names."""
    loc = tuple(err["loc"])
    if loc[-1:] == ("[key]",):
        return loc[:-1]
    error = err.get("ctx", {}).get("error")
    return loc + error.key if isinstance(error, Invalid) else loc


def _dotted(loc: tuple[str | int, ...]) -> str:
    """``pyramid[2].share`` for ``("pyramid", 2, "share")``."""
    return "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in loc).removeprefix(".")


def _got(err: Any) -> str:
    """`` (got 'x')`` for a short input; nothing for a mapping (such as a whole file) and for a
    validator's error, whose message names the values."""
    shown = repr(err.get("input"))
    if isinstance(err.get("input"), dict) or len(shown) > 60 or err["type"] == "value_error":
        return ""
    return f" (got {shown})"


def _type_at(model: Any, loc: tuple[str | int, ...]) -> Any:
    """The declared type of the value at ``loc`` below ``model``, without its constraints."""
    kind = model
    for part in loc:
        kind = _bare(kind)
        if isinstance(kind, type) and issubclass(kind, BaseModel):
            field = kind.model_fields.get(str(part))
            kind = field.annotation if field else None
        elif get_origin(kind) is dict:
            kind = get_args(kind)[1]
        elif get_origin(kind) is tuple:
            kind = get_args(kind)[0]
        else:
            return None
    return _bare(kind)


def _bare(kind: Any) -> Any:
    """``kind`` without its ``Annotated`` constraints."""
    return get_args(kind)[0] if get_origin(kind) is Annotated else kind


def _keys(kind: Any) -> list[str]:
    """The keys a mapping of type ``kind`` may have: a section's fields, a dict's literal keys."""
    if isinstance(kind, type) and issubclass(kind, BaseModel):
        return list(kind.model_fields)
    if get_origin(kind) is dict and get_origin(_bare(get_args(kind)[0])) is Literal:
        return list(get_args(_bare(get_args(kind)[0])))
    return []


def did_you_mean(word: str, options: Any, likely: Any = ()) -> str:
    """`` Did you mean 'x'?`` for the closest of ``options``, or nothing. ``likely`` are options
    that a loose resemblance suffices for, such as the missing keys next to an unknown one."""
    close = (difflib.get_close_matches(word, list(likely), n=1, cutoff=0.3)
             or difflib.get_close_matches(word, [str(o) for o in options], n=1))
    return f" Did you mean '{close[0]}'?" if close else ""
