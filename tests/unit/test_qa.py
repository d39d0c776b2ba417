"""Does the question-answering generator keep its promises, and do its two simple models work?"""

from __future__ import annotations

import pytest

from mlcourse.qa import _TEMPLATES, SPLITS, keyword_baseline, make_qa, tokens, train_scorer


@pytest.mark.parametrize("split", SPLITS)
def test_answers_sit_at_their_offsets_once(split: str) -> None:
    for example in make_qa(200, seed=3, split=split):
        start = example["answer_start"]
        assert example["passage"][start : start + len(example["answer"])] == example["answer"]
        assert example["passage"].count(example["answer"]) >= 1
        assert example["question"].endswith("?")


def test_same_seed_same_examples_and_other_seed_others() -> None:
    assert make_qa(20, seed=1) == make_qa(20, seed=1)
    assert make_qa(20, seed=1) != make_qa(20, seed=2)


def test_test_split_uses_only_held_out_question_templates() -> None:
    held_out = {questions[-1].split("{d}")[0] for _, questions in _TEMPLATES.values()}
    seen = {questions[0].split("{d}")[0] for _, questions in _TEMPLATES.values()}
    for example in make_qa(100, seed=0, split="test"):
        assert any(example["question"].startswith(prefix) for prefix in held_out)
    for example in make_qa(100, seed=0, split="train"):
        assert not any(example["question"].startswith(prefix) for prefix in held_out - seen)


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(ValueError, match="split"):
        make_qa(1, split="validation")
    with pytest.raises(ValueError, match="n must be"):
        make_qa(-1)


def test_scorer_logits_mark_non_passage_tokens_none() -> None:
    example = make_qa(1, seed=4, split="test")[0]
    start, end, offsets = train_scorer(100).logits(example["question"], example["passage"])
    n_question = len(tokens(example["question"]))
    assert len(start) == len(end) == len(offsets) == n_question + 3 + len(tokens(example["passage"]))
    assert offsets[: n_question + 2] == [None] * (n_question + 2) and offsets[-1] is None
    assert all(o is not None for o in offsets[n_question + 2 : -1])


def test_keyword_baseline_answers_with_the_sentence_holding_the_answer() -> None:
    examples = make_qa(50, seed=5, split="train")
    hits = [e["answer"] in keyword_baseline(e["question"], e["passage"]) for e in examples]
    assert sum(hits) >= 40
