"""Batched text generation with a local causal LM.

Prompts are grouped into batches of similar length and left-padded, so every row's new tokens
start at the same column. Sampling draws each row from its own generator seeded with
`GenerationSettings.seed`, so a prompt's completion does not depend on which other prompts shared
its batch: the same (prompt, model, settings) gives the same text, which is what the database's
unique constraint on (prompt, model, settings) assumes.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import torch
from transformers import GenerationConfig, LogitsProcessor, LogitsProcessorList, StoppingCriteria

from models_backend.specs import (  # noqa: F401 - re-exported for callers of this module
    PLAIN_ASSISTANT_PREFIX,
    PLAIN_STOP_STRINGS,
    PLAIN_TEMPLATE_VERSION,
    PLAIN_USER_PREFIX,
    GenerationSettings,
    Message,
    PromptFormat,
    PromptInput,
    as_messages,
    render_plain,
)

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

    from models_backend.loaders import LoadedModel

# How many of the newest tokens the stop check decodes; longer than any stop string.
_STOP_LOOKBACK_TOKENS = 16


@dataclass(frozen=True)
class Completion:
    text: str
    prompt_tokens: int
    completion_tokens: int  # tokens the model produced, up to and including the stop
    latency_s: float  # wall time of the batch that produced this completion
    finish_reason: Literal["stop", "length"]
    stop_string: str | None = None  # the stop string the text was cut before, if any


def render_prompt(
    tokenizer: PreTrainedTokenizerBase, conversation: PromptInput, prompt_format: PromptFormat
) -> str:
    if prompt_format == "plain":
        return render_plain(conversation)
    if tokenizer.chat_template is None:
        raise ValueError(
            "prompt_format='chat' needs a tokenizer with a chat template; this one has none "
            "(base models such as Gemma 3 270M need prompt_format='plain')"
        )
    return tokenizer.apply_chat_template(
        list(as_messages(conversation)), tokenize=False, add_generation_prompt=True
    )


def generate(
    loaded: LoadedModel,
    prompts: Sequence[PromptInput],
    settings: GenerationSettings,
    *,
    batch_size: int = 16,
) -> list[Completion]:
    """Answer each prompt (a string or a list of {role, content} messages), in input order."""
    texts = [render_prompt(loaded.tokenizer, p, settings.prompt_format) for p in prompts]
    # A chat template writes its own special tokens (BOS included); plain text needs them added.
    return complete_texts(
        loaded,
        texts,
        settings,
        batch_size=batch_size,
        stop_strings=PLAIN_STOP_STRINGS if settings.prompt_format == "plain" else (),
        add_special_tokens=settings.prompt_format == "plain",
    )


def generate_sequential(
    loaded: LoadedModel, prompts: Sequence[PromptInput], settings: GenerationSettings
) -> list[Completion]:
    """One prompt at a time: the baseline that batching is measured against."""
    return generate(loaded, prompts, settings, batch_size=1)


def complete_texts(
    loaded: LoadedModel,
    texts: Sequence[str],
    settings: GenerationSettings,
    *,
    batch_size: int = 16,
    stop_strings: Sequence[str] = (),
    add_special_tokens: bool = True,
) -> list[Completion]:
    """Continue already-rendered prompt texts. The returned text is cut before any stop string."""
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    tokenizer = loaded.tokenizer
    encoded = [
        tokenizer(text, add_special_tokens=add_special_tokens)["input_ids"] for text in texts
    ]
    # Batch similar lengths together so little compute goes to padding; longest first, so a
    # batch that does not fit in memory fails at once rather than at the end.
    order = sorted(range(len(texts)), key=lambda i: len(encoded[i]), reverse=True)
    results: dict[int, Completion] = {}
    for start in range(0, len(order), batch_size):
        indices = order[start : start + batch_size]
        batch = _generate_batch(loaded, [encoded[i] for i in indices], settings, stop_strings)
        results.update(zip(indices, batch, strict=True))
    return [results[i] for i in range(len(texts))]


def left_pad(rows: Sequence[Sequence[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Token id rows padded on the left to one length, and the matching attention mask."""
    width = max(len(row) for row in rows)
    input_ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    attention_mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, row in enumerate(rows):
        if row:
            input_ids[i, width - len(row) :] = torch.tensor(row, dtype=torch.long)
            attention_mask[i, width - len(row) :] = 1
    return input_ids, attention_mask


def eos_token_ids(loaded: LoadedModel) -> list[int]:
    """End-of-sequence ids from the generation config (instruct models add end-of-turn ids)."""
    ids: set[int] = set()
    configured = getattr(loaded.model.generation_config, "eos_token_id", None)
    if isinstance(configured, int):
        ids.add(configured)
    elif configured:
        ids.update(configured)
    if loaded.tokenizer.eos_token_id is not None:
        ids.add(loaded.tokenizer.eos_token_id)
    return sorted(ids)


def _generate_batch(
    loaded: LoadedModel,
    rows: Sequence[Sequence[int]],
    settings: GenerationSettings,
    stop_strings: Sequence[str],
) -> list[Completion]:
    tokenizer, model = loaded.tokenizer, loaded.model
    pad_id = tokenizer.pad_token_id
    eos_ids = eos_token_ids(loaded)
    input_ids, attention_mask = left_pad(rows, pad_id)
    input_ids, attention_mask = input_ids.to(model.device), attention_mask.to(model.device)
    prompt_width = input_ids.shape[1]

    processors = LogitsProcessorList()
    if not settings.greedy:
        processors.append(
            _PerRowSampler(
                temperature=settings.temperature,
                top_p=settings.top_p,
                seed=settings.seed,
                rows=len(rows),
                device=model.device,
            )
        )
    stopping = [_StopOnStrings(tokenizer, stop_strings, prompt_width)] if stop_strings else []
    # Sampling happens in _PerRowSampler; generate() itself always decodes greedily, which
    # then picks the one token the sampler left standing.
    config = GenerationConfig(
        max_new_tokens=settings.max_new_tokens,
        do_sample=False,
        repetition_penalty=settings.repetition_penalty,
        pad_token_id=pad_id,
        eos_token_id=eos_ids,
        bos_token_id=tokenizer.bos_token_id,
    )
    started = time.perf_counter()
    with torch.inference_mode():
        output = model.generate(
            input_ids=input_ids,
            attention_mask=attention_mask,
            generation_config=config,
            logits_processor=processors,
            stopping_criteria=stopping,
        )
    new_tokens = output[:, prompt_width:].cpu()  # .cpu() waits for the device to finish
    latency = time.perf_counter() - started

    completions = []
    for row, tokens in zip(rows, new_tokens.tolist(), strict=True):
        produced, hit_eos = _produced_tokens(tokens, eos_ids, pad_id)
        text = tokenizer.decode(produced, skip_special_tokens=True)
        cut, stop_string = _find_stop(text, stop_strings)
        completions.append(
            Completion(
                text=text[:cut].strip(),
                prompt_tokens=len(row),
                completion_tokens=len(produced) + int(hit_eos),
                latency_s=latency,
                finish_reason="stop" if hit_eos or stop_string else "length",
                stop_string=stop_string,
            )
        )
    return completions


def _produced_tokens(tokens: list[int], eos_ids: list[int], pad_id: int) -> tuple[list[int], bool]:
    """The row's own tokens: generate() fills a finished row with padding up to the batch's end."""
    for position, token in enumerate(tokens):
        if token in eos_ids:
            return tokens[:position], True
        if token == pad_id:
            return tokens[:position], False
    return tokens, False


def _find_stop(text: str, stop_strings: Sequence[str]) -> tuple[int, str | None]:
    """Where the text ends (before the earliest stop string) and which stop string that was."""
    found = [(text.find(stop), stop) for stop in stop_strings if stop in text]
    if not found:
        return len(text), None
    return min(found)


class _PerRowSampler(LogitsProcessor):
    """Temperature + nucleus sampling with one seeded generator per row.

    generate()'s own sampling draws the whole batch from one global generator, so a row's
    tokens would depend on its batch mates. Here each row draws from its own stream and every
    other logit is set to -inf, so the greedy step that follows takes exactly the drawn token.
    """

    def __init__(
        self, *, temperature: float, top_p: float, seed: int, rows: int, device: torch.device
    ):
        self.temperature = temperature
        self.top_p = top_p
        self.generators = [torch.Generator(device=device).manual_seed(seed) for _ in range(rows)]

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        logits = scores.float() / self.temperature
        if self.top_p < 1.0:
            logits = _top_p_filter(logits, self.top_p)
        probs = torch.softmax(logits, dim=-1)
        draws = torch.cat(
            [
                torch.multinomial(probs[i], num_samples=1, generator=generator)
                for i, generator in enumerate(self.generators)
            ]
        )
        forced = torch.full_like(scores, float("-inf"))
        forced.scatter_(1, draws.unsqueeze(1), 0.0)
        return forced


def _top_p_filter(logits: torch.Tensor, top_p: float) -> torch.Tensor:
    sorted_logits, sorted_indices = torch.sort(logits, descending=True, dim=-1)
    cumulative = torch.softmax(sorted_logits, dim=-1).cumsum(dim=-1)
    # Drop a token once the mass before it already reaches top_p; the top token always stays.
    drop_sorted = (cumulative - torch.softmax(sorted_logits, dim=-1)) >= top_p
    drop = drop_sorted.scatter(1, sorted_indices, drop_sorted)
    return logits.masked_fill(drop, float("-inf"))


class _StopOnStrings(StoppingCriteria):
    """Marks a row finished once its newest tokens contain a stop string (per row, so one
    row stopping does not stop the batch)."""

    def __init__(
        self, tokenizer: PreTrainedTokenizerBase, stop_strings: Sequence[str], prompt_width: int
    ):
        self.tokenizer = tokenizer
        self.stop_strings = tuple(stop_strings)
        self.prompt_width = prompt_width

    def __call__(
        self, input_ids: torch.LongTensor, scores: torch.FloatTensor, **kwargs: object
    ) -> torch.BoolTensor:
        start = max(self.prompt_width, input_ids.shape[1] - _STOP_LOOKBACK_TOKENS)
        tails = self.tokenizer.batch_decode(input_ids[:, start:], skip_special_tokens=True)
        done = [any(stop in tail for stop in self.stop_strings) for tail in tails]
        return torch.tensor(done, dtype=torch.bool, device=input_ids.device)
