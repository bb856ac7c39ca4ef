"""The simulated population: the product catalog and every customer's fixed traits.

Traits are drawn once for the whole base from one seeded generator, before the months are
simulated chunk by chunk, so a customer's traits do not depend on the chunk size and account
managers' workloads span the whole base.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from klantwaarde.config import CostsConfig, SimulateConfig


@dataclass(frozen=True)
class Catalog:
    """Products: id, category index, unit cost and list price; category names and margins."""

    categories: tuple[str, ...]
    margins: np.ndarray  # per category
    product_category: np.ndarray  # per product
    unit_cost: np.ndarray
    list_price: np.ndarray

    @property
    def product_ids(self) -> np.ndarray:
        return np.char.add("P", np.char.zfill(np.arange(1, len(self.unit_cost) + 1).astype(str),
                                              5))


@dataclass(frozen=True)
class Population:
    """Fixed traits per customer (arrays of equal length, index = customer number - 1)."""

    acquired_month: np.ndarray  # month index of acquisition; negative: before the start
    acquired_day: np.ndarray  # day of the month (0-based) of acquisition
    industry: np.ndarray  # index into config industries
    region: np.ndarray
    gender: np.ndarray
    channel: np.ndarray
    manager: np.ndarray  # index of the account manager
    workload: np.ndarray  # the manager's portfolio relative to the average
    visit_habit: np.ndarray  # how much more than average the manager visits (mean 1)
    size: np.ndarray  # monthly gross spend at full activity (EUR)
    size_class: np.ndarray  # index into config size classes
    strategic: np.ndarray
    small_frequent: np.ndarray
    friendly: np.ndarray
    complaint_heavy: np.ndarray
    payment_class: np.ndarray
    responsiveness: np.ndarray  # how much a contact lowers this account's hazard (mean 1)
    discount: np.ndarray  # discount granted (share of gross)
    warranted_discount: np.ndarray  # what the turnover at full activity warrants
    initial_categories: np.ndarray  # bool, customers x categories


def customer_ids(index: np.ndarray) -> np.ndarray:
    """Customer ids for 0-based customer numbers: C0000001, C0000002, ..."""
    return np.char.add("C", np.char.zfill((index + 1).astype(str), 7))


def manager_names(index: np.ndarray) -> np.ndarray:
    """Account-manager names for 0-based manager numbers: AM001, AM002, ..."""
    return np.char.add("AM", np.char.zfill((index + 1).astype(str), 3))


def make_catalog(cfg: SimulateConfig, rng: np.random.Generator) -> Catalog:
    params = cfg.catalog
    categories = tuple(params.category_margins)
    margins = np.array([params.category_margins[c] for c in categories])
    product_category = np.repeat(np.arange(len(categories)), params.products_per_category)
    unit_cost = np.round(params.median_unit_cost
                         * rng.lognormal(0.0, params.unit_cost_sigma, len(product_category)), 2)
    unit_cost = np.maximum(unit_cost, 0.05)
    list_price = np.round(unit_cost / (1 - margins[product_category]), 2)
    return Catalog(categories, margins, product_category, unit_cost, list_price)


def make_population(n: int, months: int, cfg: SimulateConfig, costs: CostsConfig,
                    catalog: Catalog, rng: np.random.Generator) -> Population:
    pop = cfg.population

    def pick(shares: dict[str, float], size: int = n) -> np.ndarray:
        return rng.choice(len(shares), size=size, p=list(shares.values()))

    at_start = rng.random(n) < pop.active_at_start
    # tenure before the start: mostly a few years, some decades (geometric in months)
    before = -1 - rng.geometric(1 / 48, n)
    acquired_month = np.where(at_start, before, rng.integers(0, months, n))
    size = pop.median_monthly_spend * rng.lognormal(0.0, pop.size_sigma, n)
    bounds = np.array(list(pop.size_classes.values()))
    order = np.argsort(-bounds)  # classes from the highest lower bound down
    yearly = size * 12
    size_class = order[np.argmax(yearly[:, None] >= bounds[order][None, :], axis=1)]

    n_managers = max(1, round(n / pop.customers_per_manager))
    weights = rng.dirichlet(np.full(n_managers, pop.workload_spread))
    manager = rng.choice(n_managers, size=n, p=weights)
    portfolio = np.bincount(manager, minlength=n_managers)
    workload = portfolio[manager] / portfolio.mean()
    sigma = cfg.contact.manager_habit_sigma
    habit = rng.lognormal(-sigma ** 2 / 2, sigma, n_managers)

    rank = np.argsort(np.argsort(size)) / n  # size quantile
    strategic = rng.random(n) < pop.strategic_share * 2 * rank
    small_frequent = rng.random(n) < cfg.ordering.small_frequent_share
    friendly = (rng.random(n) < cfg.contact.friendly_share * 2) & (rank < 0.5)
    complaint_heavy = rng.random(n) < cfg.complaints.heavy_share

    payment = cfg.payment.classes
    payment_class = rng.choice(len(payment), size=n, p=[c.share for c in payment.values()])
    churn = cfg.churn
    responsiveness = rng.gamma(churn.responsiveness_shape, 1 / churn.responsiveness_shape, n)

    warranted = band_discount(yearly, costs)
    stale = rng.random(n) < cfg.discounts.stale_share
    low, high = np.log(cfg.discounts.stale_turnover_factor)
    # the yearly turnover at which the discount was granted: for a stale one an older, higher one
    granted_at = yearly * np.where(stale, np.exp(rng.uniform(low, high, n)), 1.0)

    industry = pick(pop.industries)
    return Population(
        acquired_month=acquired_month, acquired_day=rng.integers(0, 28, n), industry=industry,
        region=pick(pop.regions), gender=pick(pop.contact_gender),
        channel=pick(cfg.ordering.channels), manager=manager, workload=workload,
        visit_habit=habit[manager], size=size, size_class=size_class, strategic=strategic,
        small_frequent=small_frequent, friendly=friendly, complaint_heavy=complaint_heavy,
        payment_class=payment_class, responsiveness=responsiveness,
        discount=band_discount(granted_at, costs), warranted_discount=warranted,
        initial_categories=_initial_categories(size, industry, cfg, catalog, rng),
    )


def band_discount(yearly_turnover: np.ndarray, costs: CostsConfig) -> np.ndarray:
    """The discount the band of each yearly turnover warrants."""
    starts = np.array([b.min_turnover for b in costs.discount_bands])
    rates = np.array([b.discount for b in costs.discount_bands])
    return rates[np.searchsorted(starts, yearly_turnover, side="right") - 1]


def affinity_matrix(cfg: SimulateConfig, categories: tuple[str, ...]) -> np.ndarray:
    """Industry x category affinity (1 where the configuration names none)."""
    industries = list(cfg.population.industries)
    matrix = np.ones((len(industries), len(categories)))
    for industry, row in cfg.cross_sell.affinity.items():
        for category, value in row.items():
            matrix[industries.index(industry), categories.index(category)] = value
    return matrix


def _initial_categories(size: np.ndarray, industry: np.ndarray, cfg: SimulateConfig,
                        catalog: Catalog, rng: np.random.Generator) -> np.ndarray:
    """The categories each customer buys at acquisition: more for larger customers, drawn by
    industry affinity (Gumbel top-k sampling without replacement)."""
    k = len(catalog.categories)
    median = cfg.population.median_monthly_spend
    mean = cfg.cross_sell.initial_categories * (size / median) ** 0.2
    count = np.clip(1 + rng.poisson(np.maximum(mean - 1, 0)), 1, k)
    weights = np.log(affinity_matrix(cfg, catalog.categories)[industry])
    keys = weights + rng.gumbel(size=(len(size), k))
    ranks = np.argsort(np.argsort(-keys, axis=1), axis=1)
    return ranks < count[:, None]
