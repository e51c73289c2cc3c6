"""Generation throughput: batched (left-padded, batch 16) vs one prompt at a time.

Same model, same prompts (first turns of MT-Bench questions), greedy decoding in both runs, so
both produce the same tokens and tokens/second compare like for like. Runs on CUDA when
available, else CPU (override with --device).

    python -m benchmarks.generate                      # batch 16, 16 prompts, 32 new tokens
    python -m benchmarks.generate --max-new-tokens 64 --prompts 32 --device cpu
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from models_backend.generation import Completion, GenerationSettings, generate
from models_backend.loaders import LoadedModel, ModelSpec, get_model

DEFAULT_QUESTIONS = Path(__file__).resolve().parent.parent / (
    "annotation/demo_data/mtbench/question.jsonl"
)


def _prompts(path: Path, count: int) -> list[str]:
    with path.open(encoding="utf-8") as lines:
        questions = [json.loads(line)["turns"][0] for line in lines if line.strip()]
    # Cycle when more prompts are asked for than the file has.
    return [questions[i % len(questions)] for i in range(count)]


def _run(
    label: str,
    loaded: LoadedModel,
    prompts: list[str],
    settings: GenerationSettings,
    batch_size: int,
) -> tuple[list[Completion], dict[str, float | str]]:
    started = time.perf_counter()
    completions = generate(loaded, prompts, settings, batch_size=batch_size)
    seconds = time.perf_counter() - started
    tokens = sum(c.completion_tokens for c in completions)
    return completions, {
        "mode": label,
        "batch": batch_size,
        "tokens": tokens,
        "seconds": seconds,
        "tok/s": tokens / seconds,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--prompts", type=int, default=16)
    parser.add_argument("--max-new-tokens", type=int, default=32)
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1, ...")
    parser.add_argument("--model", default=ModelSpec().source, help="hub id, path or .gguf")
    parser.add_argument("--questions", type=Path, default=DEFAULT_QUESTIONS)
    args = parser.parse_args()

    load_started = time.perf_counter()
    loaded = get_model(ModelSpec(source=args.model, device=args.device))
    load_seconds = time.perf_counter() - load_started
    prompts = _prompts(args.questions, args.prompts)
    settings = GenerationSettings(max_new_tokens=args.max_new_tokens, temperature=0)
    # Warm-up: first calls pay for lazy initialisation (kernels, allocator) in either mode.
    generate(loaded, prompts[:2], GenerationSettings(max_new_tokens=2, temperature=0))

    batched, batched_row = _run("batched", loaded, prompts, settings, args.batch_size)
    sequential, sequential_row = _run("sequential", loaded, prompts, settings, 1)
    same = sum(b.text == s.text for b, s in zip(batched, sequential, strict=True))

    print(
        f"model {loaded.name} on {loaded.device} ({loaded.dtype}), loaded via "
        f"{loaded.load_path} in {load_seconds:.1f}s; torch threads {torch.get_num_threads()}"
    )
    print(
        f"{len(prompts)} prompts, max_new_tokens={args.max_new_tokens}, greedy, "
        f"prompt tokens {sum(c.prompt_tokens for c in batched)}\n"
    )
    print(f"{'mode':<12}{'batch':>6}{'tokens':>8}{'seconds':>10}{'tok/s':>9}")
    for row in (batched_row, sequential_row):
        print(
            f"{row['mode']:<12}{row['batch']:>6}{row['tokens']:>8}"
            f"{row['seconds']:>10.2f}{row['tok/s']:>9.1f}"
        )
    ratio = float(batched_row["tok/s"]) / float(sequential_row["tok/s"])
    print(f"\nbatched / sequential throughput: {ratio:.1f}x (target >= 3x at batch 16)")
    print(f"identical greedy outputs: {same}/{len(prompts)}")


if __name__ == "__main__":
    main()
