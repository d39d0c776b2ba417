"""Support tickets routed to teams: the course's running example, generated deterministically.

:func:`make_tickets` returns one row per ticket, sorted by ``created_at``:

=================  ==============  ==================================================================
column             dtype           meaning
=================  ==============  ==================================================================
ticket_id          str             ``"T000001"``, ``"T000002"``, … in time order
created_at         datetime64[ns]  when the ticket was opened; ascending, spread over ``days`` days
customer_id        str             ``"C0042"``; a customer files many tickets and has habits of its
                                   own (which teams and products it needs, its channel, how it
                                   writes and signs), so random splits leak across customers
customer_tier      str             ``free``, ``pro`` or ``enterprise`` (fixed per customer)
channel            str             ``email``, ``chat``, ``phone`` or ``web``
product            str             ``web app``, ``mobile app``, ``api`` or ``hub device``
priority           str             ``low``, ``normal``, ``high`` or ``urgent``
text               str             the customer's message: short templated English whose phrases
                                   carry the team, with vocabulary shared between teams so that no
                                   model can be perfect
text_length        int64           ``len(text)``
account_age_days   int64           days between the customer's sign-up and the ticket
n_prior_tickets    int64           earlier tickets of the same customer in this frame
team               str             the label: the team the ticket was routed to (see ``TEAMS``)
=================  ==============  ==================================================================

The knobs (the defaults give clean, balanced, stationary data):

* ``label_noise``: each label is replaced, with this probability, by a different team drawn at
  random. The frame holds no oracle column; ``return_truth=True`` also returns the clean labels.
  Noise is drawn from its own random stream, so a noisy frame equals the clean one with the
  same seed except for some ``team`` values.
* ``imbalance``: the ratio of the most to the least frequent team's prior; priors fall
  geometrically along ``TEAMS`` (the first team is the most frequent).
* ``drift``: from the start to the end of the period the team mix moves linearly towards
  security and shipping, and the vocabulary moves towards newer phrasing (wallet top-ups,
  passkeys, lockers …): at time fraction ``u`` in [0, 1] the mix is
  ``(1 - drift*u) * prior + drift*u * drifted_prior`` and a phrase is in the new wording with
  probability ``drift*u``.

Everything is drawn from ``numpy.random.default_rng`` streams derived from ``seed``: the same
arguments give the same frame on every machine.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal, overload

import numpy as np
import pandas as pd

__all__ = [
    "CHANNELS",
    "COLUMNS",
    "PRIORITIES",
    "PRODUCTS",
    "TEAMS",
    "TIERS",
    "make_tickets",
    "team_prior",
]

TEAMS = ("billing", "technical", "account", "shipping", "security")
TIERS = ("free", "pro", "enterprise")
CHANNELS = ("email", "chat", "phone", "web")
PRODUCTS = ("web app", "mobile app", "api", "hub device")
PRIORITIES = ("low", "normal", "high", "urgent")

COLUMNS: dict[str, str] = {
    "ticket_id": "ticket id, 'T000001' … in time order",
    "created_at": "when the ticket was opened (datetime64, ascending)",
    "customer_id": "customer id, 'C0042'; customers file many tickets and have habits",
    "customer_tier": "the customer's plan: free, pro or enterprise",
    "channel": "how the ticket came in: email, chat, phone or web",
    "product": "the product concerned: web app, mobile app, api or hub device",
    "priority": "low, normal, high or urgent",
    "text": "the customer's message",
    "text_length": "number of characters in text",
    "account_age_days": "days between the customer's sign-up and the ticket",
    "n_prior_tickets": "earlier tickets of the same customer in this frame",
    "team": "the label: the team the ticket was routed to",
}

# --- how customers and tickets are drawn ----------------------------------------------------

_TIER_P = (0.55, 0.33, 0.12)
#: Dirichlet concentration of a customer's team mix: small, so most customers need one or two teams
_CUSTOMER_TEAM_ALPHA = 0.35
#: multiplies the prior at the end of a fully drifting period (security and shipping grow)
_DRIFT_TILT = (0.5, 0.7, 1.0, 1.5, 2.5)
#: P(product | team), rows in TEAMS order, columns in PRODUCTS order
_PRODUCT_AFFINITY = (
    (0.40, 0.30, 0.20, 0.10),
    (0.30, 0.30, 0.30, 0.10),
    (0.40, 0.40, 0.10, 0.10),
    (0.05, 0.10, 0.05, 0.80),
    (0.35, 0.30, 0.30, 0.05),
)
_CHANNEL_BASE = (0.40, 0.30, 0.10, 0.20)
#: how much each team pushes each channel (security incidents are phoned in)
_CHANNEL_TEAM = (
    (1.0, 1.0, 1.0, 1.2),
    (1.0, 1.3, 0.8, 1.0),
    (1.0, 1.0, 0.8, 1.3),
    (1.0, 1.2, 1.0, 1.0),
    (1.0, 0.8, 3.0, 0.8),
)
#: P(priority | team), columns in PRIORITIES order
_PRIORITY_TEAM = (
    (0.25, 0.50, 0.20, 0.05),
    (0.15, 0.45, 0.30, 0.10),
    (0.30, 0.50, 0.15, 0.05),
    (0.20, 0.50, 0.25, 0.05),
    (0.05, 0.25, 0.35, 0.35),
)
#: how each tier shifts priority (enterprise customers escalate)
_PRIORITY_TIER = ((1.4, 1.0, 0.8, 0.6), (1.0, 1.0, 1.0, 1.0), (0.6, 1.0, 1.4, 1.8))

# --- what tickets say ---------------------------------------------------------------------

#: per team: phrases in the wording of the start of the period, then in the drifted wording
_PHRASES: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "billing": (
        (
            "I was charged twice for my subscription this month",
            "my invoice {invoice} shows the wrong amount",
            "the refund of {amount} has not reached my card yet",
            "please cancel my plan and refund the last payment",
            "my credit card was declined but the charge still went through",
            "I need a copy of the invoice with our VAT number",
            "why did my monthly price go up to {amount}",
            "the payment failed and now {product} says my plan expired",
            "can I switch from monthly to annual billing",
            "I was billed for seats we removed last month",
            "the discount code was not applied to the invoice",
            "please update the billing address on our invoices",
        ),
        (
            "my wallet top-up of {amount} was deducted twice",
            "the usage statement shows credits I never consumed",
            "the pay-as-you-go meter charged {amount} overnight",
            "my credit bundle renewed without asking",
            "the usage credits are missing from my statement",
            "how do I get a receipt for the credit top-up",
        ),
    ),
    "technical": (
        (
            "{product} crashes every time I open the reports page",
            "I get error 500 when I export to CSV from {product}",
            "the sync between {product} and our calendar stopped working",
            "the request times out after {seconds} seconds",
            "{product} is very slow since this morning",
            "the page stays blank after the last update",
            "notifications are not arriving on {product}",
            "the import fails with an unknown column error",
            "the webhook is firing twice for every event",
            "the dashboard charts show no data since {day}",
            "the search does not find documents uploaded today",
            "the integration with our chat tool keeps disconnecting",
        ),
        (
            "the AI assistant in {product} gives an empty answer",
            "the new editor freezes when I paste a table",
            "offline mode loses my changes after syncing",
            "the v2 endpoint rejects requests that worked on v1",
            "the smart summary shows a spinner forever",
            "the buttons are unreadable in dark mode after the redesign",
        ),
    ),
    "account": (
        (
            "how do I change the email address on my profile",
            "please add a new user to our team workspace",
            "I want to transfer ownership of the workspace to a colleague",
            "how can I delete my profile and all my data",
            "I need to rename our organisation",
            "can you merge my two profiles into one",
            "please remove a former employee from our team",
            "how do I change my username",
            "where can I change the language of my profile settings",
            "our admin left and another member needs admin rights",
            "I cannot find the option to invite guests to the workspace",
        ),
        (
            "how do I link my profile to the new single sign-on directory",
            "please move my seat to the new organisation space",
            "the directory sync created duplicate members",
            "how do I set up a shared team space",
            "I need to change the owner of the organisation space",
        ),
    ),
    "shipping": (
        (
            "my order {order} has not arrived after {days} days",
            "the tracking number does not work on the courier site",
            "the box arrived damaged and the hub is cracked",
            "I received the wrong model of the hub",
            "can I change the delivery address for order {order}",
            "the package was marked delivered but I never got it",
            "how do I return the hub I ordered by mistake",
            "when will the replacement unit be shipped",
            "the courier left the package at the wrong address",
            "customs is holding my package and asking for a fee",
            "the delivery is late and I need it for an event on {day}",
        ),
        (
            "the pickup locker code for order {order} expired",
            "the same-day drone drop-off never showed up",
            "the locker at the station says my parcel is not there",
            "eco dispatch is taking more than {days} days",
            "I want to reschedule the doorstep drop-off",
        ),
    ),
    "security": (
        (
            "I got an email about a login from another country",
            "someone changed my password without my permission",
            "I think my account was hacked",
            "we received a phishing email that looks like it is from you",
            "please reset two-factor authentication, I lost my phone",
            "there are API keys in our workspace that nobody created",
            "I want to report a vulnerability in {product}",
            "a former employee still has access to our data",
            "we need your latest penetration test report",
            "there was suspicious activity in the audit log last night",
            "our data might have leaked, please check our workspace",
        ),
        (
            "my passkey stopped working on the new phone",
            "an authenticator push was approved but not by me",
            "someone registered a passkey on my profile",
            "the SSO certificate is about to expire and sign-ins may fail",
            "the token scanner flagged a leaked access token of ours",
        ),
    ),
}

#: phrases that two teams both receive: the irreducible ambiguity of the task
_SHARED_PHRASES: dict[tuple[str, str], tuple[str, ...]] = {
    ("billing", "account"): (
        "I cannot update my payment details in my profile",
        "I want to downgrade to the free plan",
        "please change the company name on our plan",
        "who is the owner of our subscription",
    ),
    ("billing", "shipping"): (
        "I was charged for an order that never arrived",
        "when do I get the refund for the returned hub",
        "order {order} was billed twice",
    ),
    ("technical", "security"): (
        "I keep getting logged out with an error",
        "the login page shows an error after I enter my password",
        "our API key stopped working this morning",
    ),
    ("account", "security"): (
        "I did not receive the verification code",
        "I cannot log in to my account",
        "please reset my password",
        "I lost access to the email address on my account",
    ),
    ("technical", "shipping"): (
        "the hub arrived but will not turn on",
        "the hub does not connect to wifi after setup",
    ),
    ("technical", "account"): (
        "the settings page does not save my changes",
        "I cannot upload a profile picture",
    ),
}

_GREETINGS = ("", "Hi,", "Hello,", "Hi team,", "Hey,", "Good morning,", "Dear support,", "Hello support team,")
_FILLERS = (
    "This is urgent for us.",
    "Thanks in advance.",
    "I have attached a screenshot.",
    "This happened again today.",
    "Could you please look into it?",
    "We are on a deadline.",
    "It worked fine last week.",
    "Please get back to me soon.",
    "Several colleagues have the same problem.",
    "This is the second time I am writing about this.",
)
_PRODUCT_WORDS = {"web app": "the web app", "mobile app": "the mobile app", "api": "the API", "hub device": "the hub"}
# fmt: off
_NAMES = ("Ana", "Ben", "Chen", "Dara", "Eli", "Fatima", "Goran", "Hana", "Ivo", "Jules", "Kofi", "Lena", "Mateo",
          "Nia", "Omar", "Priya", "Quinn", "Rosa", "Sami", "Tomas", "Uma", "Viktor", "Wen", "Yara", "Zoe")
_COMPANY_A = ("Northwind", "Bluebird", "Redwood", "Silverline", "Brightpath", "Oakridge", "Lakeside", "Summit",
              "Pinecrest", "Riverside", "Harbor", "Meadow", "Ironbridge", "Goldfield", "Clearwater", "Stonegate",
              "Maple", "Cedar", "Falcon", "Aurora")
_COMPANY_B = ("Labs", "Foods", "Logistics", "Studio", "Health", "Finance", "Retail", "Media", "Travel", "Energy",
              "Robotics", "Farms")
# fmt: on
_DAYS_OF_WEEK = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_QUESTION_WORDS = frozenset({"how", "can", "why", "where", "who", "when"})
#: the first phrase is the team's own with this probability, else one it shares with another team
_OWN_PHRASE_P = 0.55
_SECOND_PHRASE_P = 0.35
_FILLER_P = 0.5
#: probability that a signing customer signs a given ticket
_SIGN_P = 0.9


@overload
def make_tickets(
    n: int = ...,
    *,
    seed: int = ...,
    label_noise: float = ...,
    imbalance: float = ...,
    n_customers: int = ...,
    drift: float = ...,
    start: str = ...,
    days: int = ...,
    return_truth: Literal[False] = ...,
) -> pd.DataFrame: ...


@overload
def make_tickets(
    n: int = ...,
    *,
    seed: int = ...,
    label_noise: float = ...,
    imbalance: float = ...,
    n_customers: int = ...,
    drift: float = ...,
    start: str = ...,
    days: int = ...,
    return_truth: Literal[True],
) -> tuple[pd.DataFrame, pd.Series]: ...


def make_tickets(
    n: int = 2000,
    *,
    seed: int = 0,
    label_noise: float = 0.0,
    imbalance: float = 1.0,
    n_customers: int = 200,
    drift: float = 0.0,
    start: str = "2026-01-01",
    days: int = 180,
    return_truth: bool = False,
) -> pd.DataFrame | tuple[pd.DataFrame, pd.Series]:
    """Generate ``n`` support tickets (see the module docstring for the columns).

    Args:
        n: number of tickets (1 or more).
        seed: a non-negative integer; the same arguments always give the same frame.
        label_noise: fraction of labels replaced by a different team, in [0, 1].
        imbalance: most frequent / least frequent team prior, 1 (balanced) or more.
        n_customers: number of customers the tickets come from (1 or more).
        drift: in [0, 1]; how far the team mix and the vocabulary move by the end of the period.
        start: first day of the period, anything ``pandas.Timestamp`` reads (``"2026-01-01"``).
        days: length of the period in days (1 or more).
        return_truth: also return the labels before noise, a Series aligned with the frame.

    Returns:
        The frame, or ``(frame, true_team)`` when ``return_truth`` is set.

    Raises:
        ValueError: an argument is out of range; the message names it and its valid range.
    """
    _check_int("n", n, minimum=1)
    _check_int("seed", seed, minimum=0)
    _check_int("n_customers", n_customers, minimum=1)
    _check_int("days", days, minimum=1)
    _check_fraction("label_noise", label_noise)
    _check_fraction("drift", drift)
    _check_imbalance(imbalance)
    try:
        origin = pd.Timestamp(start)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"start must be a date such as '2026-01-01', got {start!r}") from exc
    if origin is pd.NaT or origin.tzinfo is not None:
        raise ValueError(f"start must be a date without time zone, such as '2026-01-01', got {start!r}")

    customer_rng, ticket_rng, text_rng, noise_rng = (
        np.random.default_rng(child) for child in np.random.SeedSequence(seed).spawn(4)
    )
    customers = _make_customers(customer_rng, n_customers)
    frame = _make_ticket_rows(ticket_rng, customers, n, float(imbalance), float(drift), origin, days)
    frame["text"] = _make_texts(text_rng, frame, customers, float(drift))
    frame["text_length"] = frame["text"].str.len().astype("int64")
    truth = frame["team"].copy()
    frame["team"] = _add_label_noise(noise_rng, frame["team"], float(label_noise))
    frame = frame[list(COLUMNS)]
    if return_truth:
        return frame, truth
    return frame


def team_prior(imbalance: float = 1.0) -> np.ndarray:
    """The team prior in ``TEAMS`` order: geometric, most / least frequent = ``imbalance``.

    Raises:
        ValueError: ``imbalance`` is below 1 or not finite.
    """
    _check_imbalance(imbalance)
    k = len(TEAMS)
    weights = float(imbalance) ** (-np.arange(k) / (k - 1))
    return weights / weights.sum()


# --- the steps ------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Customers:
    """Customers and their habits, one array entry per customer."""

    ids: list[str]
    tier: np.ndarray  # index into TIERS
    team_mix: np.ndarray  # (customers × teams): which teams this customer needs
    product_pref: np.ndarray  # (customers × products)
    channel_pref: np.ndarray  # (customers × channels)
    activity: np.ndarray  # relative rate of filing tickets
    age_at_start: np.ndarray  # account age in days on the first day of the period
    greeting: list[str]
    signature: list[str]  # "" for customers who do not sign


def _make_customers(rng: np.random.Generator, n_customers: int) -> _Customers:
    """Customers and their habits: tier, team and product mix, channel, activity, how they write."""
    k = len(TEAMS)
    tier = rng.choice(len(TIERS), size=n_customers, p=_TIER_P)
    team_mix = rng.dirichlet(np.full(k, _CUSTOMER_TEAM_ALPHA), size=n_customers) + 1e-3
    product_pref = rng.dirichlet(np.ones(len(PRODUCTS)), size=n_customers) + 0.05
    channel_pref = rng.dirichlet(8 * np.asarray(_CHANNEL_BASE), size=n_customers)
    activity = rng.lognormal(0.0, 0.8, size=n_customers) * np.where(tier == 2, 2.0, 1.0)
    # enterprise accounts tend to be older
    age_at_start = np.where(tier == 2, rng.integers(180, 2500, n_customers), rng.integers(14, 1500, n_customers))
    signs = rng.random(n_customers) < 0.6
    name = rng.integers(len(_NAMES), size=n_customers)
    company = rng.integers(len(_COMPANY_A) * len(_COMPANY_B), size=n_customers)
    greeting = rng.integers(len(_GREETINGS), size=n_customers)
    return _Customers(
        ids=[f"C{i:04d}" for i in range(1, n_customers + 1)],
        tier=tier,
        team_mix=team_mix / team_mix.sum(axis=1, keepdims=True),
        product_pref=product_pref,
        channel_pref=channel_pref,
        activity=activity,
        age_at_start=age_at_start,
        greeting=[_GREETINGS[g] for g in greeting],
        signature=[
            f"{_NAMES[nm]}, {_COMPANY_A[c // len(_COMPANY_B)]} {_COMPANY_B[c % len(_COMPANY_B)]}" if sign else ""
            for sign, nm, c in zip(signs, name, company, strict=True)
        ],
    )


def _make_ticket_rows(
    rng: np.random.Generator,
    customers: _Customers,
    n: int,
    imbalance: float,
    drift: float,
    origin: pd.Timestamp,
    days: int,
) -> pd.DataFrame:
    """Everything but the text: time, team, customer, product, channel, priority."""
    seconds = np.sort(rng.integers(0, days * 86_400, size=n))
    fraction = seconds / (days * 86_400)  # time fraction u in [0, 1)

    start_prior = team_prior(imbalance)
    end_prior = start_prior * np.asarray(_DRIFT_TILT)
    end_prior /= end_prior.sum()
    weight = (drift * fraction)[:, None]
    priors = (1 - weight) * start_prior + weight * end_prior
    team = _draw_rows(rng, priors)

    # customer given team: active customers who need this team file its tickets
    by_team = customers.team_mix * customers.activity[:, None]
    by_team /= by_team.sum(axis=0, keepdims=True)
    customer = np.empty(n, dtype=np.int64)
    for k in range(len(TEAMS)):
        rows = np.flatnonzero(team == k)
        customer[rows] = rng.choice(len(customers.ids), size=rows.size, p=by_team[:, k])

    tier = customers.tier[customer]
    product_p = np.asarray(_PRODUCT_AFFINITY)[team] * customers.product_pref[customer]
    product = _draw_rows(rng, product_p)
    channel_p = np.asarray(_CHANNEL_TEAM)[team] * customers.channel_pref[customer]
    channel = _draw_rows(rng, channel_p)
    priority_p = np.asarray(_PRIORITY_TEAM)[team] * np.asarray(_PRIORITY_TIER)[tier]
    priority = _draw_rows(rng, priority_p)

    created_at = pd.DatetimeIndex(origin + pd.to_timedelta(seconds, unit="s")).astype("datetime64[ns]")
    signup = origin - pd.to_timedelta(customers.age_at_start[customer], unit="D")
    account_age_days = np.asarray((created_at - signup).days, dtype=np.int64)
    frame = pd.DataFrame(
        {
            "ticket_id": [f"T{i:06d}" for i in range(1, n + 1)],
            "created_at": created_at,
            "customer_id": np.asarray(customers.ids, dtype=object)[customer],
            "customer_tier": np.asarray(TIERS, dtype=object)[tier],
            "channel": np.asarray(CHANNELS, dtype=object)[channel],
            "product": np.asarray(PRODUCTS, dtype=object)[product],
            "priority": np.asarray(PRIORITIES, dtype=object)[priority],
            "account_age_days": account_age_days,
            "team": np.asarray(TEAMS, dtype=object)[team],
            "_customer": customer,
            "_fraction": fraction,
        }
    )
    frame["n_prior_tickets"] = frame.groupby("customer_id").cumcount().astype("int64")
    for column in ("ticket_id", "customer_id", "customer_tier", "channel", "product", "priority", "team"):
        frame[column] = frame[column].astype("str")
    return frame


def _make_texts(rng: np.random.Generator, frame: pd.DataFrame, customers: _Customers, drift: float) -> list[str]:
    """One message per ticket, written from its (clean) team, product and customer."""
    shared_by_team = {
        team: tuple(phrase for pair, phrases in _SHARED_PHRASES.items() if team in pair for phrase in phrases)
        for team in TEAMS
    }
    draws = rng.random((len(frame), 14))
    texts = []
    rows = zip(frame["team"], frame["product"], frame["_customer"].tolist(), frame["_fraction"], draws, strict=True)
    for team, product, customer, fraction, u in rows:
        new_wording = drift * fraction
        slots = {
            "product": _PRODUCT_WORDS[product],
            "order": f"#{10_000 + int(u[10] * 90_000)}",
            "invoice": f"INV-{1_000 + int(u[11] * 9_000)}",
            "amount": f"${5 + int(u[12] * 295)}.{int(u[13] * 100) % 100:02d}",
            "days": str(2 + int(u[10] * 12)),
            "seconds": str(10 * (3 + int(u[11] * 10))),
            "day": _DAYS_OF_WEEK[int(u[12] * 7)],
        }
        own = _PHRASES[team][1 if u[0] < new_wording else 0]
        if u[1] < _OWN_PHRASE_P:
            first = own[int(u[2] * len(own))]
        else:
            first = shared_by_team[team][int(u[2] * len(shared_by_team[team]))]
        greeting = customers.greeting[customer]
        parts = [greeting, _sentence(first, slots, capitalise=not greeting)]
        if u[3] < _SECOND_PHRASE_P:
            second_bank = _PHRASES[team][1 if u[4] < new_wording else 0] if u[5] < 0.5 else shared_by_team[team]
            second = second_bank[int(u[6] * len(second_bank))]
            if second != first:
                parts.append(_sentence(second, slots))
        if u[7] < _FILLER_P:
            parts.append(_FILLERS[int(u[8] * len(_FILLERS))])
        signature = customers.signature[customer]
        if signature and u[9] < _SIGN_P:
            parts.append(f"- {signature}")
        texts.append(" ".join(part for part in parts if part))
    return texts


def _add_label_noise(rng: np.random.Generator, team: pd.Series, label_noise: float) -> pd.Series:
    """Replace each label, with probability ``label_noise``, by one of the other teams."""
    codes = team.map({name: k for k, name in enumerate(TEAMS)}).to_numpy(dtype=np.int64)
    flip = rng.random(codes.size) < label_noise
    shift = rng.integers(1, len(TEAMS), size=codes.size)  # 1..K-1: never the same team
    noisy = np.where(flip, (codes + shift) % len(TEAMS), codes)
    return pd.Series(np.asarray(TEAMS, dtype=object)[noisy], index=team.index, name=team.name, dtype="str")


def _sentence(phrase: str, slots: dict[str, str], *, capitalise: bool = True) -> str:
    """The phrase with its slots filled and punctuated; capitalised unless it follows a greeting."""
    text = phrase.format(**slots)
    question = text.split(" ", 1)[0] in _QUESTION_WORDS
    if capitalise:
        text = text[0].upper() + text[1:]
    return text + ("?" if question else ".")


def _draw_rows(rng: np.random.Generator, weights: np.ndarray) -> np.ndarray:
    """One category index per row of a (rows × categories) weight matrix (inverse-CDF sampling)."""
    cumulative = np.cumsum(weights, axis=1)
    cumulative /= cumulative[:, -1:]
    picks = (rng.random(len(weights))[:, None] > cumulative).sum(axis=1)
    return np.minimum(picks, weights.shape[1] - 1)


def _check_int(name: str, value: object, *, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")


def _check_imbalance(imbalance: object) -> None:
    if isinstance(imbalance, bool) or not isinstance(imbalance, int | float) or not 1 <= imbalance < math.inf:
        raise ValueError(f"imbalance must be a finite number >= 1 (1 = balanced), got {imbalance!r}")


def _check_fraction(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
        raise ValueError(f"{name} must be a number in [0, 1], got {value!r}")
