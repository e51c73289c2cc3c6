"""Routing features for a comparison: what is known about a pair before anyone labels it.

Django-free. A pair is described by the judge's verdict (and its probability margin when the
judge reports one), the prompt's category and cheap HyPER-style tags (code, maths, question
words), the two answers' lengths, similarity and formatting, and how the verdict fits the
judge's other verdicts in the arena (`routing.consensus`: the models' standing by the judge's
own verdicts on the same prompt, category and arena). The model pair as one-hot columns is
left out by default: with it the router would learn per-model judge biases of one dataset,
and the consensus columns carry the models' standing without naming them.

Because the disagreement model is linear, the known judge biases enter as explicit
interactions with the verdict's direction: "the judge picked the longer answer" (verbosity
bias), "the judge picked the better-formatted answer", "the judge was decisive although the
answers are nearly the same text".
"""

from __future__ import annotations

import hashlib
import math
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from routing.consensus import Verdict, consensus_columns
from routing.embeddings import Embedder, embedding_columns

VERDICTS = ("model_a", "model_b", "tie", "tie (inconsistent)")
MTBENCH_CATEGORIES = (
    "writing",
    "roleplay",
    "reasoning",
    "math",
    "coding",
    "extraction",
    "stem",
    "humanities",
)

_TOKEN = re.compile(r"\w+")
_DIGITS = "0123456789"
# The text patterns are matched against lower-cased text: IGNORECASE is several times slower.
_CODE_HINT = re.compile(
    r"`|\bdef |\bclass |\bimport |\bfunction\b|\bcode\b|\bprogram\b|\bpython\b|\bc\+\+|\bjava"
    r"|\bsql\b|\bregex\b|\balgorithm\b"
)
_MATH_HINT = re.compile(
    r"\d\s*[-+*/^=]\s*\d|\bsolve\b|\bcalculate\b|\bequation\b|\bprobability\b|\bintegral\b"
    r"|\bderivative\b|\bprove\b"
)
# Every alternative of the patterns above and below holds one of these substrings (or, for the
# arithmetic one, a digit): a plain `in` scan rules most texts out several times faster than the
# regex engine trying each alternative at each position, with the same answers.
_CODE_WORDS = (
    "`", "def ", "class ", "import ", "function", "code", "program", "python", "c++", "java",
    "sql", "regex", "algorithm",
)  # fmt: skip
_MATH_WORDS = ("solve", "calculate", "equation", "probability", "integral", "derivative", "prove")
_REFUSAL_WORDS = (
    "sorry, ", "apologi", "as an ai", "able to", "cannot", "can't", "t have", "t actually have",
    "understand the question",
)  # fmt: skip


def _matches(pattern: re.Pattern[str], text: str, words: tuple[str, ...]) -> bool:
    return any(word in text for word in words) and pattern.search(text) is not None


_QUESTION_WORD = re.compile(r"\b(?:what|why|how|which|who|whom|whose|when|where)\b")
_STRUCTURE = re.compile(r"^\s*(?:[-*•]|\d+[.)]|#+)\s", re.MULTILINE)
# A refusal or a non-answer, not any "I can't" or "I'm sorry": "I can't wait to return", "I'm
# sorry to hear that" and "I don't have a favourite style" are answers.
_REFUSAL_VERBS = (
    r"(?:help(?! but)|assist|provide|answer|comply|fulfil|complete|do that|browse|access|give"
    r"|share|offer|perform|predict|generate|create|write|engage|diagnose|perceive)"
)
_REFUSAL = re.compile(
    r"\bi(?:'m| am) sorry, (?:but\b|it seems)|\bi apologi[sz]e, but\b|\bas an ai\b"
    r"|\bsorry, i (?:can't|cannot|am unable|am not able|don't understand|do not understand)"
    rf"|\bi(?:'m| am) (?:unable|not(?: actually)? able) to {_REFUSAL_VERBS}"
    rf"|\bi (?:cannot|can't) {_REFUSAL_VERBS}"
    r"|\bi do(?: not|n't)(?: actually)? have (?:access|the ability|personal|real-time|feelings"
    r"|opinions|emotions|enough information|the capability|a physical|a visual)"
    r"|\bi do(?: not|n't) understand the question"
)


@dataclass(frozen=True, slots=True)
class RoutingPair:
    """One comparison as the router sees it: no human votes.

    `llm_prob_a` is the judge's probability that answer A is better; `llm_prob_a_orders` the
    same probability from each presentation order (A first, then B first), when the judge ran
    both. Either may be absent (GPT-4 verdicts carry neither). `other_labels` are the
    verdicts of further judges on the same pair, when a project runs several.
    """

    id: str
    prompt: str
    response_a: str
    response_b: str
    llm_label: str | None
    llm_prob_a: float | None = None
    llm_prob_a_orders: tuple[float, ...] | None = None
    category: str | None = None
    turn: int = 1
    has_reference: bool = False
    model_a: str | None = None
    model_b: str | None = None
    other_labels: tuple[str, ...] = ()
    prompt_key: str | None = None
    conversation_key: str | None = None

    def verdict(self) -> Verdict:
        """The pair's verdict as the arena-wide consensus reads it."""
        return Verdict(
            self.id,
            self.prompt_key,
            self.category,
            self.model_a,
            self.model_b,
            self.llm_label,
            self.conversation_key,
            self.turn,
        )


def conversation_of(opening: str) -> str:
    """The key of the conversation a prompt opens with: prompts whose first user turn is the
    same text are turns of one conversation. A short digest, so an arena's verdicts do not each
    carry the opening's text."""
    return hashlib.blake2b(opening.encode("utf-8"), digest_size=8).hexdigest()


def _conversation_key(record: Mapping[str, Any]) -> str:
    """A record's conversation: its question when it names one (MT-Bench: both turns share
    it), else the opening user message of `conversation_a`, else the prompt itself."""
    if record.get("question_id") is not None:
        return f"question {record['question_id']}"
    conversation = record.get("conversation_a")
    if isinstance(conversation, list) and conversation and isinstance(conversation[0], dict):
        first = conversation[0]
        if first.get("role") == "user" and isinstance(first.get("content"), str):
            return conversation_of(first["content"])
    return conversation_of(record["prompt"])


def pair_from_record(record: Mapping[str, Any]) -> RoutingPair:
    """A `RoutingPair` from a record in the MT-Bench pairs schema; ValueError names the field."""
    for name in ("id", "prompt", "response_a", "response_b"):
        if not isinstance(record.get(name), str):
            raise ValueError(f"field {name!r} must be a string")
    label = record.get("llm_label")
    if label is not None and label not in VERDICTS:
        raise ValueError(f"field 'llm_label' must be one of {VERDICTS} or null, not {label!r}")
    prob = record.get("llm_prob_a")
    if prob is not None and not isinstance(prob, int | float):
        raise ValueError("field 'llm_prob_a' must be a number or null")
    orders = record.get("llm_prob_a_orders")
    if orders is not None and (
        not isinstance(orders, list) or not all(isinstance(p, int | float) for p in orders)
    ):
        raise ValueError("field 'llm_prob_a_orders' must be a list of numbers or null")
    others = record.get("other_llm_labels") or []
    if not isinstance(others, list) or not all(o in VERDICTS for o in others):
        raise ValueError(f"field 'other_llm_labels' must be a list of {VERDICTS}")
    turn = record.get("turn") or 1
    if not isinstance(turn, int):
        raise ValueError("field 'turn' must be an integer")
    # Pairs on the same prompt: the same question and turn, else the same prompt text.
    question = record.get("question_id")
    prompt_key = f"{question}/{turn}" if question is not None else record["prompt"]
    return RoutingPair(
        id=record["id"],
        prompt=record["prompt"],
        response_a=record["response_a"],
        response_b=record["response_b"],
        llm_label=label,
        llm_prob_a=float(prob) if prob is not None else None,
        llm_prob_a_orders=tuple(float(p) for p in orders) if orders else None,
        category=record.get("category"),
        turn=turn,
        has_reference=bool(record.get("reference_answer")),
        model_a=record.get("model_a"),
        model_b=record.get("model_b"),
        other_labels=tuple(others),
        prompt_key=prompt_key,
        conversation_key=_conversation_key(record),
    )


@dataclass(frozen=True, slots=True)
class FeatureConfig:
    """Which features to build. The vocabularies are fixed here, not learnt from the pairs
    being featurised, so a model fitted on one batch scores another with the same columns."""

    categories: tuple[str, ...] = MTBENCH_CATEGORIES
    include_models: bool = False
    models: tuple[str, ...] = ()
    consensus: bool = True
    embeddings: bool = False

    @classmethod
    def with_models_of(cls, pairs: Sequence[RoutingPair], **kwargs: Any) -> FeatureConfig:
        """A config with the model-pair indicators switched on, for the models in `pairs`."""
        names = sorted({m for p in pairs for m in (p.model_a, p.model_b) if m})
        return cls(include_models=True, models=tuple(names), **kwargs)


@dataclass(frozen=True, slots=True)
class PairFeatures:
    """A feature matrix (one row per pair) with its column names."""

    matrix: np.ndarray
    names: tuple[str, ...]
    ids: tuple[str, ...] = field(default=())

    def column(self, name: str) -> np.ndarray:
        return self.matrix[:, self.names.index(name)]

    def rows(self, index: np.ndarray) -> PairFeatures:
        ids = tuple(self.ids[i] for i in index) if self.ids else ()
        return PairFeatures(self.matrix[index], self.names, ids)

    def __len__(self) -> int:
        return self.matrix.shape[0]


def _digit_count(text: str) -> int:
    # Ten str.count scans run in C without building a new string: ~4x faster than deleting
    # the digits with translate(), ~40x faster than a per-character isdigit() loop.
    return sum(map(text.count, _DIGITS))


def _text_stats(text: str) -> tuple[Counter[str], int, int, int, int]:
    """Token counts, characters, digits, list/heading lines, refusal phrases of one text."""
    lowered = text.lower()
    plain = lowered.replace("\u2019", "'")  # a typographic apostrophe (right single quote)
    return (
        Counter(_TOKEN.findall(lowered)),
        len(text),
        _digit_count(text),
        len(_STRUCTURE.findall(text)),
        1 if _matches(_REFUSAL, plain, _REFUSAL_WORDS) else 0,
    )


def _similarities(tokens_a: Counter[str], tokens_b: Counter[str]) -> tuple[float, float]:
    """Token-set Jaccard and bag-of-words cosine; two empty answers count as identical."""
    if not tokens_a and not tokens_b:
        return 1.0, 1.0
    shared = tokens_a.keys() & tokens_b.keys()
    jaccard = len(shared) / len(tokens_a.keys() | tokens_b.keys())
    dot = sum(tokens_a[t] * tokens_b[t] for t in shared)
    norm = math.sqrt(sum(v * v for v in tokens_a.values()) * sum(v * v for v in tokens_b.values()))
    return jaccard, dot / norm if norm else 0.0


def _margins(pairs: Sequence[RoutingPair]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Judge confidence |2p - 1|, the per-order gap |p1 - p2|, and whether p is known."""
    n = len(pairs)
    margin, gap, known = np.zeros(n), np.zeros(n), np.zeros(n)
    for i, pair in enumerate(pairs):
        if pair.llm_prob_a_orders:
            probs = np.asarray(pair.llm_prob_a_orders)
            margin[i] = abs(2.0 * probs.mean() - 1.0)
            gap[i] = probs.max() - probs.min()
            known[i] = 1.0
        elif pair.llm_prob_a is not None:
            margin[i] = abs(2.0 * pair.llm_prob_a - 1.0)
            known[i] = 1.0
    return margin, gap, known


def outcome(label: str | None) -> str | None:
    """A verdict or vote as an outcome: every kind of tie ("tie (inconsistent)", "tie
    (bothbad)") is a tie."""
    return "tie" if label is not None and label.startswith("tie") else label


def _disagreeing_share(label: str | None, others: tuple[str, ...]) -> float:
    if not others:
        return 0.0
    mine = outcome(label)
    return sum(outcome(other) != mine for other in others) / len(others)


def _verdict_columns(pairs: Sequence[RoutingPair]) -> dict[str, np.ndarray]:
    n = len(pairs)
    labels = [p.llm_label for p in pairs]
    names = ("verdict_a", "verdict_b", "verdict_tie", "verdict_inconsistent")
    columns = {
        name: np.fromiter((lab == verdict for lab in labels), float, n)
        for verdict, name in zip(VERDICTS, names, strict=True)
    }
    columns["verdict_null"] = np.fromiter((lab is None for lab in labels), float, n)
    margin, gap, known = _margins(pairs)
    # Other judges: whether any labelled the pair, and the share that disagree with this one
    # (a flipped verdict counts as a tie on both sides).
    columns["other_judges"] = np.fromiter((bool(p.other_labels) for p in pairs), float, n)
    columns["other_judges_disagree"] = np.fromiter(
        (_disagreeing_share(p.llm_label, p.other_labels) for p in pairs), float, n
    )
    columns["margin_known"] = known
    columns["margin"] = margin
    columns["margin_order_gap"] = gap
    return columns


def _prompt_columns(pairs: Sequence[RoutingPair], config: FeatureConfig) -> dict[str, np.ndarray]:
    n = len(pairs)
    categories = [p.category for p in pairs]
    columns = {
        f"category_{category}": np.fromiter((c == category for c in categories), float, n)
        for category in config.categories
    }
    known = set(config.categories)
    columns["category_other"] = np.fromiter((c not in known for c in categories), float, n)
    prompts = [p.prompt.lower() for p in pairs]
    chars = np.fromiter((len(t) for t in prompts), float, n)
    digits = np.fromiter((_digit_count(t) for t in prompts), float, n)
    columns["prompt_log_chars"] = np.log1p(chars)
    columns["prompt_digit_ratio"] = digits / np.maximum(chars, 1.0)
    columns["prompt_code"] = np.fromiter(
        (_matches(_CODE_HINT, t, _CODE_WORDS) for t in prompts), float, n
    )
    columns["prompt_math"] = np.fromiter(
        (
            (d > 0 and _MATH_HINT.search(t) is not None) or _matches(_MATH_HINT, t, _MATH_WORDS)
            for t, d in zip(prompts, digits, strict=True)
        ),
        float,
        n,
    )
    columns["prompt_question_words"] = np.log1p(
        np.fromiter((len(_QUESTION_WORD.findall(t)) for t in prompts), float, n)
    )
    columns["prompt_question_mark"] = np.fromiter(("?" in t for t in prompts), float, n)
    columns["follow_up_turn"] = np.fromiter((p.turn > 1 for p in pairs), float, n)
    columns["has_reference"] = np.fromiter((p.has_reference for p in pairs), float, n)
    return columns


def _answer_columns(pairs: Sequence[RoutingPair]) -> dict[str, np.ndarray]:
    """Answer features; `log_ratio`, `structure_diff` and `refusal_diff` are signed A - B."""
    n = len(pairs)
    stats_a = [_text_stats(p.response_a) for p in pairs]
    stats_b = [_text_stats(p.response_b) for p in pairs]

    def stat(stats: list[tuple[Counter[str], int, int, int, int]], k: int) -> np.ndarray:
        return np.fromiter((s[k] for s in stats), float, n)

    chars_a, chars_b = stat(stats_a, 1), stat(stats_b, 1)
    log_a, log_b = np.log1p(chars_a), np.log1p(chars_b)
    sims = [_similarities(a[0], b[0]) for a, b in zip(stats_a, stats_b, strict=True)]
    digits_a = stat(stats_a, 2) / np.maximum(chars_a, 1.0)
    digits_b = stat(stats_b, 2) / np.maximum(chars_b, 1.0)
    structure_diff = np.log1p(stat(stats_a, 3)) - np.log1p(stat(stats_b, 3))
    refusal_diff = stat(stats_a, 4) - stat(stats_b, 4)
    return {
        "answers_log_chars": (log_a + log_b) / 2.0,
        "answers_abs_log_ratio": np.abs(log_a - log_b),
        "log_ratio": log_a - log_b,
        "answer_empty": ((chars_a == 0) | (chars_b == 0)).astype(float),
        "answers_jaccard": np.fromiter((s[0] for s in sims), float, n),
        "answers_cosine": np.fromiter((s[1] for s in sims), float, n),
        "answers_digit_ratio": (digits_a + digits_b) / 2.0,
        "answers_code_block": np.fromiter(
            ("```" in p.response_a or "```" in p.response_b for p in pairs), float, n
        ),
        "answers_abs_structure_diff": np.abs(structure_diff),
        "answers_one_refuses": np.abs(refusal_diff),
        "structure_diff": structure_diff,
        "refusal_diff": refusal_diff,
    }


def _bias_columns(
    verdict: dict[str, np.ndarray], answers: dict[str, np.ndarray]
) -> dict[str, np.ndarray]:
    """Interactions with the verdict's direction: the judge's known biases."""
    direction = verdict["verdict_a"] - verdict["verdict_b"]  # +1 picked A, -1 picked B
    decisive = np.abs(direction)
    cosine = answers["answers_cosine"]
    return {
        "picked_longer": direction * answers["log_ratio"],
        "picked_more_structured": direction * answers["structure_diff"],
        "picked_the_refusal": direction * answers["refusal_diff"],
        "decisive_on_similar": decisive * cosine,
        "tie_on_dissimilar": (verdict["verdict_tie"] + verdict["verdict_inconsistent"])
        * (1.0 - cosine),
        "decisive_margin": decisive * verdict["margin"],
    }


def build_features(
    pairs: Sequence[RoutingPair],
    config: FeatureConfig | None = None,
    context: Iterable[Verdict] = (),
    embedder: Embedder | None = None,
) -> PairFeatures:
    """The routing feature matrix for `pairs`: linear in the number of characters.

    `context` is every other verdict of the same judge in the arena: the consensus columns
    (see `routing.consensus`) score each verdict against them and against the other `pairs`.
    With `config.embeddings`, `embedder` (default: the packaged one, see `routing.embeddings`)
    adds how alike the answers mean.

    The per-text scans (tokens, digits, lists) are Python string operations; everything
    after them is whole-column numpy arithmetic.
    """
    config = config or FeatureConfig()
    verdict = _verdict_columns(pairs)
    answers = _answer_columns(pairs)
    columns = {**verdict, **_prompt_columns(pairs, config), **answers}
    columns.update(_bias_columns(verdict, answers))
    if config.consensus:
        columns.update(consensus_columns([p.verdict() for p in pairs], context))
    if config.embeddings:
        decisive = verdict["verdict_a"] + verdict["verdict_b"]
        columns.update(
            embedding_columns(
                [p.response_a for p in pairs],
                [p.response_b for p in pairs],
                decisive,
                answers["answers_cosine"],
                embedder,
            )
        )
    # The signed A - B differences only mean something relative to the verdict's direction
    # (A and B are in arbitrary order), so they enter through the bias interactions only.
    for signed in ("log_ratio", "structure_diff", "refusal_diff"):
        del columns[signed]
    if config.include_models:
        for model in config.models:
            columns[f"model_{model}"] = np.fromiter(
                ((model in (p.model_a, p.model_b)) for p in pairs), float, len(pairs)
            )
    names = tuple(columns)
    matrix = np.column_stack([columns[name] for name in names])
    return PairFeatures(matrix=matrix, names=names, ids=tuple(p.id for p in pairs))


def feature_names(config: FeatureConfig | None = None) -> tuple[str, ...]:
    """The columns `build_features` makes with `config`, in order."""
    return build_features([], config).names


def verdict_features(pairs: Sequence[RoutingPair]) -> PairFeatures:
    """Only the verdict and margin columns: all the `ColdStartRule` reads, without a text scan."""
    columns = _verdict_columns(pairs)
    names = tuple(columns)
    matrix = np.column_stack([columns[name] for name in names])
    return PairFeatures(matrix=matrix, names=names, ids=tuple(p.id for p in pairs))


# What each column means, for the page that explains a routing decision.
_SCOPE_WORDS = {
    "prompt": "the judge's other verdicts on this prompt",
    "category": "the judge's verdicts in this category",
    "global": "the judge's verdicts in the whole arena",
}
FEATURE_MEANINGS: dict[str, str] = {
    "verdict_a": "the judge preferred answer A",
    "verdict_b": "the judge preferred answer B",
    "verdict_tie": "the judge called a tie",
    "verdict_inconsistent": "the judge's verdict flipped when the answers were swapped",
    "verdict_null": "the judge gave no verdict",
    "other_judges": "another judge labelled the pair",
    "other_judges_disagree": "share of the other judges that disagree with this one",
    "margin_known": "the judge reported probabilities",
    "margin": "the judge's confidence |2 P(A) - 1|",
    "margin_order_gap": "how much P(A) moved between the two orders",
    "category_other": "a category the router has no column for",
    "prompt_log_chars": "prompt length (log characters)",
    "prompt_digit_ratio": "share of digits in the prompt",
    "prompt_code": "the prompt is about code",
    "prompt_math": "the prompt is about maths",
    "prompt_question_words": "question words in the prompt (log count)",
    "prompt_question_mark": "the prompt asks a question",
    "follow_up_turn": "a follow-up turn of a conversation",
    "has_reference": "the prompt has a reference answer",
    "answers_log_chars": "answer length (mean log characters)",
    "answers_abs_log_ratio": "how different the two answers' lengths are",
    "answer_empty": "an answer is empty",
    "answers_jaccard": "word overlap of the two answers",
    "answers_cosine": "word-count similarity of the two answers",
    "answers_digit_ratio": "share of digits in the answers",
    "answers_code_block": "an answer holds a code block",
    "answers_abs_structure_diff": "how different the answers' lists and headings are",
    "answers_one_refuses": "one answer refuses",
    "picked_longer": "the judge picked the longer answer (verbosity bias)",
    "picked_more_structured": "the judge picked the answer with more lists and headings",
    "picked_the_refusal": "the judge picked the answer that refuses",
    "decisive_on_similar": "a decisive verdict on two similar answers",
    "tie_on_dissimilar": "a tie (or a verdict that flipped) between two dissimilar answers",
    "decisive_margin": "the confidence of a decisive verdict",
    "answers_embed_cosine": "how alike the two answers mean (sentence embeddings)",
    "decisive_on_similar_embed": "a decisive verdict on two answers that mean the same",
    "prompt_judge_ties": "share of the judge's other verdicts on this prompt that are ties "
    "(flipped ones included)",
    "prompt_judge_flips": "share of the judge's other verdicts on this prompt that flipped",
    "prompt_standing": "how highly the judge's other verdicts on this prompt rank both answers "
    "(+ both high, - both low)",
    "decisive_prompt_standing": "a decisive verdict between two answers the judge's other "
    "verdicts on this prompt rank high (+) or low (-)",
    "conversation_known": "the judge also compared these two models at another turn of the "
    "conversation",
    "conversation_agree": "the verdict agrees (+) or conflicts (-) with the judge's verdicts "
    "on these two models at the conversation's other turns",
    "conversation_ties": "share of ties (flipped verdicts included) among the judge's verdicts "
    "on these two models at the conversation's other turns",
    "decisive_conversation_ties": "a decisive verdict where the judge called these two models "
    "a tie (or flipped) at another turn",
    **{
        f"{scope}_consensus": f"the verdict agrees (+) or conflicts (-) with {words}"
        for scope, words in _SCOPE_WORDS.items()
    },
    **{
        f"{scope}_abs_gap": f"how far apart the two models rank by {words}"
        for scope, words in _SCOPE_WORDS.items()
    },
    **{
        f"tie_{scope}_gap": f"a tie (or a verdict that flipped) between models ranked far apart "
        f"by {words}"
        for scope, words in _SCOPE_WORDS.items()
    },
}


def feature_meaning(name: str) -> str:
    """A short description of a feature column ("" for one this version does not know)."""
    if name in FEATURE_MEANINGS:
        return FEATURE_MEANINGS[name]
    if name.startswith("category_"):
        return f"the prompt's category is {name.removeprefix('category_')}"
    if name.startswith("model_"):
        return f"{name.removeprefix('model_')} wrote one of the answers"
    return ""
