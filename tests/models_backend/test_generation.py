"""Generation with the real default model (Gemma 3 270M, CPU float32 here)."""

from __future__ import annotations

import pytest

from models_backend.generation import (
    PLAIN_STOP_STRINGS,
    GenerationSettings,
    generate,
    generate_sequential,
    left_pad,
    render_plain,
    render_prompt,
)
from models_backend.loaders import LoadedModel, get_model

PROMPTS = [
    "What is the capital of France?",
    "Write a haiku about the sea.",
    "Name a fruit.",
    [
        {"role": "user", "content": "Hi, who are you?"},
        {"role": "assistant", "content": "I am a helpful assistant."},
        {"role": "user", "content": "What can you do?"},
    ],
]


@pytest.fixture(scope="module")
def loaded() -> LoadedModel:
    # The process-wide LRU keeps it: every test module gets the same instance.
    return get_model()


def test_batched_greedy_output_equals_sequential(loaded: LoadedModel) -> None:
    settings = GenerationSettings(max_new_tokens=12, temperature=0)

    batched = generate(loaded, PROMPTS, settings, batch_size=4)
    sequential = generate_sequential(loaded, PROMPTS, settings)

    # Prompts of different lengths share a batch, so this holds only if left padding, the
    # attention mask and the positions are right.
    assert [c.text for c in batched] == [c.text for c in sequential]
    assert [c.completion_tokens for c in batched] == [c.completion_tokens for c in sequential]
    assert [c.prompt_tokens for c in batched] == [c.prompt_tokens for c in sequential]


def test_greedy_answer_stops_at_the_next_question(loaded: LoadedModel) -> None:
    settings = GenerationSettings(max_new_tokens=32, temperature=0)

    [completion] = generate(loaded, ["What is the capital of France?"], settings)

    assert "Paris" in completion.text
    assert completion.finish_reason == "stop"
    assert completion.stop_string in PLAIN_STOP_STRINGS
    assert "Question:" not in completion.text
    assert completion.completion_tokens < 32
    assert completion.latency_s > 0


def test_seeded_sampling_is_reproducible(loaded: LoadedModel) -> None:
    settings = GenerationSettings(max_new_tokens=8, temperature=1.0, top_p=0.95, seed=7)
    other = GenerationSettings(**{**settings.to_dict(), "seed": 8})

    first = generate(loaded, PROMPTS[:3], settings)
    again = generate(loaded, PROMPTS[:3], settings)
    other_seed = generate(loaded, PROMPTS[:3], other)

    assert [c.text for c in first] == [c.text for c in again]
    assert [c.text for c in first] != [c.text for c in other_seed]


def test_sampled_text_does_not_depend_on_batch_mates(loaded: LoadedModel) -> None:
    settings = GenerationSettings(max_new_tokens=8, temperature=0.8, seed=3)

    in_batch = generate(loaded, PROMPTS[:3], settings)
    alone = generate_sequential(loaded, PROMPTS[:3], settings)

    assert [c.text for c in in_batch] == [c.text for c in alone]


def test_max_new_tokens_bounds_the_completion(loaded: LoadedModel) -> None:
    settings = GenerationSettings(max_new_tokens=5, temperature=0)

    [completion] = generate(loaded, ["Write a long story about a dragon."], settings)

    assert completion.completion_tokens <= 5
    if completion.finish_reason == "length":
        assert completion.completion_tokens == 5


def test_plain_transcript_of_a_multi_turn_conversation() -> None:
    assert render_plain(PROMPTS[3]) == (
        "Question: Hi, who are you?\n\n"
        "Answer: I am a helpful assistant.\n\n"
        "Question: What can you do?\n\n"
        "Answer:"
    )
    assert render_plain("Why?") == "Question: Why?\n\nAnswer:"


def test_a_conversation_must_end_with_the_user() -> None:
    with pytest.raises(ValueError, match="end with a user message"):
        render_plain([{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Yo"}])


def test_chat_format_needs_a_chat_template(loaded: LoadedModel) -> None:
    # The packaged GGUF is the base model: it carries no chat template.
    with pytest.raises(ValueError, match="chat template"):
        render_prompt(loaded.tokenizer, "Hi", "chat")


def test_left_pad_aligns_rows_on_the_right() -> None:
    input_ids, attention_mask = left_pad([[5, 6, 7], [8]], pad_id=0)

    assert input_ids.tolist() == [[5, 6, 7], [0, 0, 8]]
    assert attention_mask.tolist() == [[1, 1, 1], [0, 0, 1]]


def test_settings_hash_is_stable() -> None:
    settings = GenerationSettings(max_new_tokens=24, temperature=0)

    # Pinned: the hash is stored in the database, so it must not drift between releases.
    assert settings.settings_hash() == (
        "d3535ca1b44fc43dbdf3fb3d1a4891b10f856216c0086f95c3b92fe622794366"
    )
    assert GenerationSettings(max_new_tokens=24, temperature=0.0).settings_hash() == (
        settings.settings_hash()
    )
    assert GenerationSettings.from_dict(settings.to_dict()) == settings


@pytest.mark.parametrize(
    "change",
    [
        {"max_new_tokens": 25},
        {"temperature": 0.1},
        {"top_p": 0.9},
        {"seed": 1},
        {"repetition_penalty": 1.1},
        {"prompt_format": "chat"},
    ],
)
def test_settings_hash_changes_with_every_field(change: dict[str, object]) -> None:
    base = GenerationSettings(max_new_tokens=24, temperature=0)

    assert GenerationSettings(**{**base.to_dict(), **change}).settings_hash() != (
        base.settings_hash()
    )


@pytest.mark.parametrize(
    "bad",
    [{"max_new_tokens": 0}, {"temperature": -1}, {"top_p": 0}, {"prompt_format": "xml"}],
)
def test_invalid_settings_are_rejected(bad: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        GenerationSettings(**bad)  # type: ignore[arg-type]
