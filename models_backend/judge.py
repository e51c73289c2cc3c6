"""Pairwise LLM judge: which of two answers to the same prompt is better.

The prompt follows MT-Bench's pairwise judge (Zheng et al. 2023, FastChat `pair-v2`, Apache-2.0):
neutral labels "A" / "B" / "C" (tie), and explicit instructions not to favour a position, a length
or a name. Instead of letting the judge write an essay and parsing "[[A]]" out of it, the prompt
ends with `Final verdict: [[` and the verdict is read from the next-token probabilities of the
three label tokens: one forward pass per order, no decoding loop, and a graded probability rather
than a hard vote.

Small judges prefer whichever answer comes first (or second), so every pair is judged in both
orders and the probabilities are averaged after mapping the swapped order back; `consistent`
records whether both orders alone would have given the same verdict.

Canonical orientation: `a` is `JudgePair.response_a`, `b` is `JudgePair.response_b`, whatever
label the judge saw them under.

`judge_pairs_by_generation` is the FastChat-style generate-then-parse judge, kept as the
benchmark baseline.
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import torch

from models_backend.generation import (
    Completion,
    GenerationSettings,
    PromptFormat,
    complete_texts,
    left_pad,
)

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

    from models_backend.loaders import LoadedModel

Outcome = Literal["a", "b", "tie"]
LABELS = ("A", "B", "C")  # shown to the judge: first answer, second answer, tie
VERDICT_PREFIX = "Final verdict: [["
_VERDICT_PATTERN = re.compile(r"\[\[([ABC])\]\]")

_INSTRUCTION = (
    "Please act as an impartial judge and evaluate the quality of the responses provided by two "
    "AI assistants to the user question displayed below. You should choose the assistant that "
    "follows the user's instructions and answers the user's question better. Your evaluation "
    "should consider factors such as the helpfulness, relevance, accuracy, depth, creativity, and "
    "level of detail of their responses.{reference_clause}{turn_clause} Avoid any position biases "
    "and ensure that the order in which the responses were presented does not influence your "
    "decision. Do not allow the length of the responses to influence your evaluation. Do not "
    "favor certain names of the assistants. Be as objective as possible. {explain_clause}Output "
    'your final verdict by strictly following this format: "[[A]]" if assistant A is better, '
    '"[[B]]" if assistant B is better, and "[[C]]" for a tie.'
)
_REFERENCE_CLAUSE = (
    " You will be given a reference answer. Compare both assistants' answers with the reference "
    "answer and identify their mistakes."
)
_TURN_CLAUSE = " Focus on which assistant gives the better answer to the last user question."
_EXPLAIN_CLAUSE = (
    "Begin your evaluation by comparing the two responses and provide a short explanation. "
    "After providing your explanation, "
)


@dataclass(frozen=True)
class JudgePair:
    """Two answers to one prompt. For a multi-turn comparison, `conversation_a` / `conversation_b`
    hold each assistant's whole transcript ({role, content} messages, ending with its answer)."""

    prompt: str
    response_a: str
    response_b: str
    reference_answer: str | None = None
    conversation_a: Sequence[Mapping[str, str]] | None = None
    conversation_b: Sequence[Mapping[str, str]] | None = None

    def swapped(self) -> JudgePair:
        return JudgePair(
            prompt=self.prompt,
            response_a=self.response_b,
            response_b=self.response_a,
            reference_answer=self.reference_answer,
            conversation_a=self.conversation_b,
            conversation_b=self.conversation_a,
        )

    @property
    def is_multi_turn(self) -> bool:
        return bool(self.conversation_a and len(self.conversation_a) > 2)


@dataclass(frozen=True)
class JudgeConfig:
    batch_size: int = 8
    # Each answer is cut to this many tokens (both alike): bounds cost and memory on long answers.
    max_response_tokens: int | None = 512
    prompt_format: PromptFormat = "plain"  # "chat": wrap the instruction in the chat template
    rationale: bool = False  # also generate a short explanation of the verdict
    rationale_max_new_tokens: int = 96


@dataclass(frozen=True)
class OrderScores:
    """The judge's view of one presentation order, mapped back to the canonical orientation."""

    swapped: bool  # True: response_b was shown as "A"
    p_a: float
    p_b: float
    p_tie: float
    label_mass: float  # share of the full next-token distribution that went to the three labels
    parsed: bool = True  # generate-then-parse only: False when no [[X]] verdict was found

    @property
    def verdict(self) -> Outcome:
        return _argmax_outcome(self.p_a, self.p_b, self.p_tie)


@dataclass(frozen=True)
class Judgment:
    p_a: float  # order-averaged probability that response_a is better
    p_b: float
    p_tie: float
    orders: tuple[OrderScores, OrderScores]  # (as given, swapped)
    latency_s: float  # wall time of the batches that computed this pair (shared with batch mates)
    rationale: str | None = None

    @property
    def verdict(self) -> Outcome:
        return _argmax_outcome(self.p_a, self.p_b, self.p_tie)

    @property
    def consistent(self) -> bool:
        """Both orders give the same verdict on their own (an unparsed order gives none)."""
        as_given, swapped = self.orders
        return as_given.parsed and swapped.parsed and as_given.verdict == swapped.verdict


def _argmax_outcome(p_a: float, p_b: float, p_tie: float) -> Outcome:
    # An exact tie between the two sides (e.g. an inconsistent hard-vote judge) is a tie.
    if p_a == p_b or p_tie >= max(p_a, p_b):
        return "tie"
    return "a" if p_a > p_b else "b"


def render_judge_prompt(
    tokenizer: PreTrainedTokenizerBase,
    pair: JudgePair,
    *,
    max_response_tokens: int | None,
    prompt_format: PromptFormat = "plain",
    explain: bool = False,
) -> str:
    """The judge prompt for `pair` as shown (response_a as "A"), ending where the verdict or,
    with `explain`, the explanation begins."""
    instruction = _INSTRUCTION.format(
        reference_clause=_REFERENCE_CLAUSE if pair.reference_answer else "",
        turn_clause=_TURN_CLAUSE if pair.is_multi_turn else "",
        explain_clause=_EXPLAIN_CLAUSE if explain else "",
    )

    def cut(text: str) -> str:
        return _truncate(tokenizer, text, max_response_tokens)

    sections = [f"[Instruction]\n{instruction}"]
    if pair.is_multi_turn:
        assert pair.conversation_a is not None and pair.conversation_b is not None
        if pair.reference_answer:
            sections.append(_block("Reference Answer", cut(pair.reference_answer)))
        for name, conversation in (("A", pair.conversation_a), ("B", pair.conversation_b)):
            speaker = {"user": "User", "assistant": f"Assistant {name}"}
            turns = "\n\n".join(
                f"### {speaker.get(m['role'], m['role'])}:\n{cut(m['content'])}"
                for m in conversation
            )
            sections.append(
                f"<|The Start of Assistant {name}'s Conversation with User|>\n\n{turns}\n\n"
                f"<|The End of Assistant {name}'s Conversation with User|>"
            )
    else:
        sections.append(f"[User Question]\n{pair.prompt.strip()}")
        if pair.reference_answer:
            sections.append(_block("Reference Answer", cut(pair.reference_answer)))
        sections.append(_block("Assistant A's Answer", cut(pair.response_a)))
        sections.append(_block("Assistant B's Answer", cut(pair.response_b)))
    body = "\n\n".join(sections)
    answer_start = "Explanation:" if explain else VERDICT_PREFIX
    if prompt_format == "chat":
        chat = tokenizer.apply_chat_template(
            [{"role": "user", "content": body}], tokenize=False, add_generation_prompt=True
        )
        return f"{chat}{answer_start}"
    return f"{body}\n\n{answer_start}"


def _block(title: str, text: str) -> str:
    return f"[The Start of {title}]\n{text}\n[The End of {title}]"


def _truncate(tokenizer: PreTrainedTokenizerBase, text: str, max_tokens: int | None) -> str:
    text = text.strip()
    if max_tokens is None:
        return text
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    if len(ids) <= max_tokens:
        return text
    return tokenizer.decode(ids[:max_tokens]) + " [...]"


def label_token_ids(tokenizer: PreTrainedTokenizerBase) -> list[int]:
    """The token each verdict label starts with, right after `Final verdict: [[`.

    Tokenizers merge differently, so the ids are found by tokenizing the real context rather
    than the bare letters; each label must add exactly one distinct token.
    """
    context = tokenizer(VERDICT_PREFIX, add_special_tokens=False)["input_ids"]
    ids = []
    for label in LABELS:
        with_label = tokenizer(VERDICT_PREFIX + label, add_special_tokens=False)["input_ids"]
        if with_label[: len(context)] != context or len(with_label) != len(context) + 1:
            raise ValueError(
                f"verdict label {label!r} is not a single token after {VERDICT_PREFIX!r}"
            )
        ids.append(with_label[-1])
    if len(set(ids)) != len(ids):
        raise ValueError("verdict labels share a token")
    return ids


def judge_pairs(
    loaded: LoadedModel, pairs: Sequence[JudgePair], config: JudgeConfig | None = None
) -> list[Judgment]:
    """Judge each pair in both orders from the verdict-label probabilities; input order kept."""
    config = config or JudgeConfig()
    tokenizer = loaded.tokenizer
    labels = label_token_ids(tokenizer)
    shown = [pair for original in pairs for pair in (original, original.swapped())]
    texts = [
        render_judge_prompt(
            tokenizer,
            pair,
            max_response_tokens=config.max_response_tokens,
            prompt_format=config.prompt_format,
        )
        for pair in shown
    ]
    add_special = config.prompt_format == "plain"
    encoded = [tokenizer(t, add_special_tokens=add_special)["input_ids"] for t in texts]
    label_probs, label_mass, batch_of, batch_seconds = _score_labels(
        loaded, encoded, labels, config.batch_size
    )

    judgments = []
    for index in range(len(pairs)):
        first, second = 2 * index, 2 * index + 1
        as_given = OrderScores(
            swapped=False,
            p_a=label_probs[first][0],
            p_b=label_probs[first][1],
            p_tie=label_probs[first][2],
            label_mass=label_mass[first],
        )
        # In the swapped order label "A" is response_b: map it back.
        swapped = OrderScores(
            swapped=True,
            p_a=label_probs[second][1],
            p_b=label_probs[second][0],
            p_tie=label_probs[second][2],
            label_mass=label_mass[second],
        )
        batches = {batch_of[first], batch_of[second]}
        judgments.append(_combine(as_given, swapped, sum(batch_seconds[b] for b in batches)))
    if config.rationale:
        judgments = _add_rationales(loaded, pairs, judgments, config)
    return judgments


def _combine(as_given: OrderScores, swapped: OrderScores, latency_s: float) -> Judgment:
    return Judgment(
        p_a=(as_given.p_a + swapped.p_a) / 2,
        p_b=(as_given.p_b + swapped.p_b) / 2,
        p_tie=(as_given.p_tie + swapped.p_tie) / 2,
        orders=(as_given, swapped),
        latency_s=latency_s,
    )


def _score_labels(
    loaded: LoadedModel, encoded: Sequence[Sequence[int]], labels: Sequence[int], batch_size: int
) -> tuple[list[list[float]], list[float], list[int], list[float]]:
    """Per prompt: label probabilities (softmax over the label logits only), the labels' share of
    the full distribution, and which batch computed it; plus each batch's wall time."""
    model = loaded.model
    pad_id = loaded.tokenizer.pad_token_id
    label_index = torch.tensor(labels, device=model.device)
    probs: list[list[float]] = [[] for _ in encoded]
    mass: list[float] = [0.0] * len(encoded)
    batch_of = [0] * len(encoded)
    batch_seconds: list[float] = []
    # Similar lengths together waste little compute on padding.
    order = sorted(range(len(encoded)), key=lambda i: len(encoded[i]), reverse=True)
    for start in range(0, len(order), batch_size):
        indices = order[start : start + batch_size]
        started = time.perf_counter()
        input_ids, attention_mask = left_pad([encoded[i] for i in indices], pad_id)
        input_ids, attention_mask = input_ids.to(model.device), attention_mask.to(model.device)
        # Positions count real tokens only, as generate() does, so left padding changes nothing.
        position_ids = (attention_mask.cumsum(dim=-1) - 1).clamp(min=0)
        with torch.inference_mode():
            # logits_to_keep=1: only the last position's logits; the full (batch, length,
            # vocabulary) tensor would cost gigabytes with Gemma's 262k vocabulary.
            logits = model(
                input_ids=input_ids,
                attention_mask=attention_mask,
                position_ids=position_ids,
                logits_to_keep=1,
                use_cache=False,
            ).logits[:, -1, :]
        logits = logits.float()
        restricted = torch.softmax(logits[:, label_index], dim=-1).cpu()
        share = torch.softmax(logits, dim=-1)[:, label_index].sum(dim=-1).cpu()
        batch_seconds.append(time.perf_counter() - started)
        for row, i in enumerate(indices):
            probs[i] = restricted[row].tolist()
            mass[i] = float(share[row])
            batch_of[i] = len(batch_seconds) - 1
    return probs, mass, batch_of, batch_seconds


def _outcome_label(outcome: Outcome) -> str:
    return {"a": "A", "b": "B", "tie": "C"}[outcome]


def _add_rationales(
    loaded: LoadedModel,
    pairs: Sequence[JudgePair],
    judgments: list[Judgment],
    config: JudgeConfig,
) -> list[Judgment]:
    """A short explanation generated after the decided verdict (as-given order), so the text
    explains the verdict the probabilities chose rather than competing with it."""
    texts = [
        render_judge_prompt(
            loaded.tokenizer,
            pair,
            max_response_tokens=config.max_response_tokens,
            prompt_format=config.prompt_format,
        )
        + f"{_outcome_label(judgment.verdict)}]]\n\nExplanation:"
        for pair, judgment in zip(pairs, judgments, strict=True)
    ]
    settings = GenerationSettings(max_new_tokens=config.rationale_max_new_tokens, temperature=0)
    completions = complete_texts(
        loaded,
        texts,
        settings,
        batch_size=config.batch_size,
        stop_strings=("\n\n", "[["),
        add_special_tokens=config.prompt_format == "plain",
    )
    return [
        Judgment(
            p_a=j.p_a,
            p_b=j.p_b,
            p_tie=j.p_tie,
            orders=j.orders,
            latency_s=j.latency_s + c.latency_s,
            rationale=c.text,
        )
        for j, c in zip(judgments, completions, strict=True)
    ]


def parse_verdict(text: str) -> str | None:
    """The first `[[A]]`, `[[B]]` or `[[C]]` in a judge's free text (FastChat's rule), else None."""
    match = _VERDICT_PATTERN.search(text)
    return match.group(1) if match else None


def judge_pairs_by_generation(
    loaded: LoadedModel,
    pairs: Sequence[JudgePair],
    config: JudgeConfig | None = None,
    *,
    max_new_tokens: int = 128,
) -> list[Judgment]:
    """Baseline: generate an explanation and a `[[X]]` verdict (greedy, both orders, batched),
    then parse it. A verdict becomes a one-hot probability; an unparsable order counts as a
    tie with `parsed=False`, as FastChat counts it as an error rather than a vote."""
    config = config or JudgeConfig()
    shown = [pair for original in pairs for pair in (original, original.swapped())]
    texts = [
        render_judge_prompt(
            loaded.tokenizer,
            pair,
            max_response_tokens=config.max_response_tokens,
            prompt_format=config.prompt_format,
            explain=True,
        )
        for pair in shown
    ]
    settings = GenerationSettings(max_new_tokens=max_new_tokens, temperature=0)
    completions = complete_texts(
        loaded,
        texts,
        settings,
        batch_size=config.batch_size,
        # Stop as soon as a verdict is out: anything after it is wasted decoding.
        stop_strings=tuple(f"[[{label}]]" for label in LABELS),
        add_special_tokens=config.prompt_format == "plain",
    )

    def order_scores(completion: Completion, *, swapped: bool) -> OrderScores:
        # The text is cut before the stop string, and the stop strings are the verdicts.
        label = parse_verdict(completion.text + (completion.stop_string or ""))
        if label is None:
            return OrderScores(swapped, 0.0, 0.0, 1.0, label_mass=0.0, parsed=False)
        shown_as = {"A": (1.0, 0.0, 0.0), "B": (0.0, 1.0, 0.0), "C": (0.0, 0.0, 1.0)}[label]
        p_first, p_second, p_tie = shown_as
        if swapped:
            p_first, p_second = p_second, p_first
        return OrderScores(swapped, p_first, p_second, p_tie, label_mass=1.0)

    judgments = []
    for index in range(len(pairs)):
        first, second = completions[2 * index], completions[2 * index + 1]
        # A completion's latency is its batch's wall time: equal values mean the same batch.
        latency = (
            first.latency_s
            if first.latency_s == second.latency_s
            else (first.latency_s + second.latency_s)
        )
        judgments.append(
            _combine(
                order_scores(first, swapped=False),
                order_scores(second, swapped=True),
                latency,
            )
        )
    return judgments
