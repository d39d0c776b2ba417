"""mlcourse.tickets: the running example's generator, checked as a data specification.

Statistical checks use tolerances of about four binomial standard deviations (or a margin of
that order), on fixed seeds: they are deterministic, and would fail if a knob stopped working.
"""

from __future__ import annotations

import math
import re

import numpy as np
import pandas as pd
import pytest
from scipy.stats import chi2_contingency

from mlcourse import tickets
from mlcourse.tickets import COLUMNS, TEAMS, make_tickets, team_prior


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    return make_tickets(2000, seed=0)


def team_shares(teams: pd.Series) -> np.ndarray:
    return teams.value_counts(normalize=True).reindex(list(TEAMS), fill_value=0.0).to_numpy()


def total_variation(a: pd.Series, b: pd.Series) -> float:
    return 0.5 * float(np.abs(team_shares(a) - team_shares(b)).sum())


# --- determinism ----------------------------------------------------------------------------


def test_same_seed_gives_the_same_frame(frame: pd.DataFrame) -> None:
    """Do the same arguments give an identical frame, dtypes included?"""
    pd.testing.assert_frame_equal(make_tickets(2000, seed=0), frame)


@pytest.mark.parametrize("column", ["created_at", "customer_id", "text", "team"])
def test_different_seed_gives_a_different_frame(frame: pd.DataFrame, column: str) -> None:
    """Does another seed change the data (not just one column)?"""
    other = make_tickets(2000, seed=1)
    assert not other[column].equals(frame[column])


# --- schema -------------------------------------------------------------------------------------


def test_columns_are_the_documented_ones_in_order(frame: pd.DataFrame) -> None:
    """Are the columns exactly COLUMNS, each described in the module docstring?"""
    assert list(frame.columns) == list(COLUMNS)
    assert tickets.__doc__ is not None
    for column in COLUMNS:
        assert re.search(rf"^{column}\s", tickets.__doc__, flags=re.MULTILINE), f"{column} is not documented"


@pytest.mark.parametrize(
    ("column", "kind"),
    [
        ("ticket_id", "string"),
        ("created_at", "datetime"),
        ("customer_id", "string"),
        ("customer_tier", "string"),
        ("channel", "string"),
        ("product", "string"),
        ("priority", "string"),
        ("text", "string"),
        ("text_length", "integer"),
        ("account_age_days", "integer"),
        ("n_prior_tickets", "integer"),
        ("team", "string"),
    ],
)
def test_column_dtypes(frame: pd.DataFrame, column: str, kind: str) -> None:
    """Does every column have its documented dtype, and no missing values?"""
    check = {
        "string": pd.api.types.is_string_dtype,
        "datetime": pd.api.types.is_datetime64_dtype,
        "integer": pd.api.types.is_integer_dtype,
    }[kind]
    assert check(frame[column].dtype), f"{column}: {frame[column].dtype}"
    assert frame[column].notna().all()


@pytest.mark.parametrize(
    ("column", "allowed"),
    [
        ("team", tickets.TEAMS),
        ("customer_tier", tickets.TIERS),
        ("channel", tickets.CHANNELS),
        ("product", tickets.PRODUCTS),
        ("priority", tickets.PRIORITIES),
    ],
)
def test_categorical_columns_use_their_vocabulary(frame: pd.DataFrame, column: str, allowed: tuple) -> None:
    """Does each closed column use only its documented values, and all of them?"""
    assert set(frame[column]) == set(allowed)


def test_ids_have_their_documented_format(frame: pd.DataFrame) -> None:
    """Are ticket ids 'T' + 6 digits, unique and in time order, and customer ids 'C' + 4 digits?"""
    assert frame["ticket_id"].str.fullmatch(r"T\d{6}").all()
    assert frame["ticket_id"].is_unique
    assert frame["ticket_id"].is_monotonic_increasing
    assert frame["customer_id"].str.fullmatch(r"C\d{4}").all()


@pytest.mark.parametrize(("start", "days"), [("2026-01-01", 180), ("2025-06-15", 7), ("2024-02-28", 1)])
def test_created_at_is_sorted_and_inside_the_period(start: str, days: int) -> None:
    """Are the timestamps ascending, inside [start, start + days), and spread across the period?"""
    df = make_tickets(1000, seed=3, start=start, days=days)
    begin = pd.Timestamp(start)
    end = begin + pd.Timedelta(days=days)
    assert df["created_at"].is_monotonic_increasing
    assert df["created_at"].min() >= begin
    assert df["created_at"].max() < end
    # spread, not bunched: each fifth of the period gets a reasonable share
    fifth = ((df["created_at"] - begin) / (end - begin) * 5).astype(int)
    assert fifth.value_counts().min() > 1000 / 5 * 0.7


def test_derived_columns_agree_with_the_rows(frame: pd.DataFrame) -> None:
    """Are text_length, n_prior_tickets and account_age_days consistent with the other columns?"""
    assert (frame["text_length"] == frame["text"].str.len()).all()
    assert (frame["n_prior_tickets"] == frame.groupby("customer_id").cumcount()).all()
    assert (frame["account_age_days"] >= 0).all()
    # one sign-up date per customer: created_at - age is constant within a customer (to the day)
    signup = frame["created_at"].dt.normalize() - pd.to_timedelta(frame["account_age_days"], unit="D")
    spread = signup.groupby(frame["customer_id"]).agg(lambda s: (s.max() - s.min()).days)
    assert spread.max() <= 1


def test_customer_tier_is_fixed_per_customer(frame: pd.DataFrame) -> None:
    """Does each customer keep one tier across all their tickets?"""
    assert frame.groupby("customer_id")["customer_tier"].nunique().max() == 1


def test_texts_are_short_and_english(frame: pd.DataFrame) -> None:
    """Are the messages non-empty, short, and mostly distinct?"""
    assert frame["text_length"].between(15, 400).all()
    assert frame["text"].nunique() > 0.8 * len(frame)
    assert frame["text"].str.contains(r"\b(?:the|my|I|our)\b").mean() > 0.9


@pytest.mark.parametrize(("n", "n_customers"), [(1, 1), (5, 1), (3, 500)])
def test_tiny_and_lopsided_sizes_work(n: int, n_customers: int) -> None:
    """Do one ticket, one customer, or more customers than tickets still give a valid frame?"""
    df = make_tickets(n, seed=0, n_customers=n_customers)
    assert len(df) == n
    assert list(df.columns) == list(COLUMNS)
    assert df["customer_id"].nunique() <= min(n, n_customers)


# --- customers --------------------------------------------------------------------------------


def test_customers_file_many_tickets(frame: pd.DataFrame) -> None:
    """Do most tickets come from customers who filed several (so group splits matter)?"""
    per_customer = frame["customer_id"].value_counts()
    assert per_customer.max() > 1
    assert per_customer.median() >= 3
    assert (frame["n_prior_tickets"] > 0).mean() > 0.8


def test_customers_have_team_habits(frame: pd.DataFrame) -> None:
    """Does a customer's own most frequent team predict their tickets far better than the global mode?"""
    regular = frame.groupby("customer_id").filter(lambda g: len(g) >= 5)
    customer_mode_share = regular.groupby("customer_id")["team"].agg(lambda s: s.value_counts().iloc[0] / len(s))
    weighted = float(np.average(customer_mode_share, weights=regular.groupby("customer_id").size()))
    assert weighted > team_shares(frame["team"]).max() + 0.2


# --- label noise --------------------------------------------------------------------------------


@pytest.mark.parametrize("noise", [0.0, 0.05, 0.2, 0.5])
def test_label_noise_flips_the_requested_fraction(noise: float) -> None:
    """Is the fraction of labels that differ from the truth within 4 binomial SDs of label_noise?"""
    n = 5000
    df, truth = make_tickets(n, seed=2, label_noise=noise, return_truth=True)
    flipped = (df["team"] != truth).mean()
    tolerance = 4 * math.sqrt(noise * (1 - noise) / n)
    assert abs(flipped - noise) <= tolerance


def test_label_noise_changes_only_the_label() -> None:
    """Is a noisy frame the clean frame of the same seed with some labels changed, and is the truth clean?"""
    clean = make_tickets(3000, seed=4)
    noisy, truth = make_tickets(3000, seed=4, label_noise=0.3, return_truth=True)
    pd.testing.assert_frame_equal(noisy.drop(columns="team"), clean.drop(columns="team"))
    pd.testing.assert_series_equal(truth, clean["team"])
    assert (noisy["team"] != clean["team"]).any()


def test_flipped_labels_go_to_every_other_team() -> None:
    """Does a flipped label land on every other team, about equally often?"""
    df, truth = make_tickets(5000, seed=5, label_noise=0.5, return_truth=True)
    changed = df["team"] != truth
    pairs = pd.crosstab(truth[changed], df["team"][changed]).reindex(index=TEAMS, columns=TEAMS, fill_value=0)
    off_diagonal = pairs.to_numpy()[~np.eye(len(TEAMS), dtype=bool)]
    # each (true, noisy) pair expects 5000 * 0.5 * 0.2 * 0.25 = 125 rows
    assert off_diagonal.min() > 125 - 4 * math.sqrt(125)
    assert off_diagonal.max() < 125 + 4 * math.sqrt(125)


def test_frame_has_no_oracle_columns() -> None:
    """Does the noisy frame leave out anything that reveals which labels were flipped?"""
    df = make_tickets(100, seed=0, label_noise=0.3)
    assert list(df.columns) == list(COLUMNS)


def test_truth_equals_labels_without_noise(frame: pd.DataFrame) -> None:
    """Without noise, is the returned truth the label column itself?"""
    df, truth = make_tickets(2000, seed=0, return_truth=True)
    pd.testing.assert_series_equal(truth, df["team"])
    pd.testing.assert_frame_equal(df, frame)


# --- imbalance ------------------------------------------------------------------------------


@pytest.mark.parametrize("imbalance", [1.0, 3.0, 10.0])
def test_team_shares_follow_the_imbalanced_prior(imbalance: float) -> None:
    """For large n, is each team's share within 4 binomial SDs of a prior whose max/min ratio is imbalance?"""
    n = 20_000
    prior = team_prior(imbalance)
    assert prior.max() / prior.min() == pytest.approx(imbalance)
    shares = team_shares(make_tickets(n, seed=6, imbalance=imbalance)["team"])
    tolerance = 4 * np.sqrt(prior * (1 - prior) / n)
    assert np.all(np.abs(shares - prior) <= tolerance), (shares, prior)
    assert shares.max() / shares.min() == pytest.approx(imbalance, rel=0.2)


def test_first_team_is_the_most_frequent_under_imbalance() -> None:
    """With imbalance, do the teams' frequencies fall along TEAMS?"""
    counts = make_tickets(10_000, seed=7, imbalance=5.0)["team"].value_counts()
    assert list(counts.index) == list(TEAMS)


# --- drift ----------------------------------------------------------------------------------


def thirds(df: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    third = len(df) // 3
    return df.iloc[:third], df.iloc[-third:]


def word_distance(first: pd.Series, last: pd.Series) -> float:
    """Total variation distance between the word frequencies of two sets of texts."""

    def frequencies(texts: pd.Series) -> pd.Series:
        return texts.str.lower().str.findall(r"[a-z][a-z-]+").explode().value_counts(normalize=True)

    a, b = frequencies(first).align(frequencies(last), fill_value=0.0)
    return 0.5 * float((a - b).abs().sum())


@pytest.mark.parametrize("seed", [0, 1])
def test_no_drift_keeps_the_team_mix(seed: int) -> None:
    """With drift=0, do the first and last thirds have about the same team mix?"""
    first, last = thirds(make_tickets(6000, seed=seed, drift=0.0))
    assert total_variation(first["team"], last["team"]) < 0.06
    table = pd.crosstab(np.r_[np.zeros(len(first)), np.ones(len(last))], pd.concat([first["team"], last["team"]]))
    assert chi2_contingency(table).pvalue > 0.001


@pytest.mark.parametrize("seed", [0, 1])
def test_full_drift_changes_the_team_mix(seed: int) -> None:
    """With drift=1, is the change between the first and last thirds large and significant?"""
    first, last = thirds(make_tickets(6000, seed=seed, drift=1.0))
    assert total_variation(first["team"], last["team"]) > 0.1
    table = pd.crosstab(np.r_[np.zeros(len(first)), np.ones(len(last))], pd.concat([first["team"], last["team"]]))
    assert chi2_contingency(table).pvalue < 1e-6


def test_drift_grows_with_the_knob() -> None:
    """Does more drift give a larger change of the team mix?"""
    distances = [
        total_variation(*(part["team"] for part in thirds(make_tickets(9000, seed=8, drift=d))))
        for d in (0.0, 0.5, 1.0)
    ]
    assert distances[0] < distances[1] < distances[2]


@pytest.mark.parametrize("team", TEAMS)
def test_drift_shifts_the_vocabulary_within_each_team(team: str) -> None:
    """Within one team (so not just the team mix), do early and late tickets use words differently under drift?"""
    distances = {}
    for drift in (0.0, 1.0):
        first, last = thirds(make_tickets(6000, seed=9, drift=drift))
        distances[drift] = word_distance(first["text"][first["team"] == team], last["text"][last["team"] == team])
    assert distances[0.0] < 0.12  # sampling noise only
    assert distances[1.0] > 1.8 * distances[0.0]


# --- the text carries signal, but not a trivial one ----------------------------------------------


def test_text_alone_predicts_the_team_well_but_not_perfectly() -> None:
    """Does TF-IDF + logistic regression on clean text reach macro-F1 well above chance (0.2) but below 0.99?"""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import f1_score
    from sklearn.model_selection import train_test_split
    from sklearn.pipeline import make_pipeline

    df = make_tickets(2000, seed=10)
    train, test = train_test_split(df, test_size=0.3, random_state=0, stratify=df["team"])
    model = make_pipeline(TfidfVectorizer(), LogisticRegression(max_iter=1000)).fit(train["text"], train["team"])
    score = f1_score(test["team"], model.predict(test["text"]), average="macro")
    assert 0.6 < score < 0.99


# --- argument checks ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"n": 0}, "n"),
        ({"n": 2.5}, "n"),
        ({"n": True}, "n"),
        ({"seed": -1}, "seed"),
        ({"label_noise": -0.1}, "label_noise"),
        ({"label_noise": 1.5}, "label_noise"),
        ({"imbalance": 0.5}, "imbalance"),
        ({"imbalance": math.inf}, "imbalance"),
        ({"imbalance": math.nan}, "imbalance"),
        ({"n_customers": 0}, "n_customers"),
        ({"drift": 1.01}, "drift"),
        ({"drift": "high"}, "drift"),
        ({"days": 0}, "days"),
        ({"start": "not a date"}, "start"),
        ({"start": "2026-01-01T00:00+02:00"}, "start"),
    ],
)
def test_bad_arguments_are_value_errors_naming_the_argument(kwargs: dict, name: str) -> None:
    """Is each out-of-range argument refused with a ValueError that names it?"""
    with pytest.raises(ValueError, match=rf"^{name} "):
        make_tickets(**{"n": 10, **kwargs})
