"""Judge throughput: label-probability scoring vs FastChat-style generate-then-parse.

Same model, same MT-Bench pairs, both orders, same batch size and answer truncation. The
probability judge needs one forward pass per order; the baseline decodes an explanation and a
`[[X]]` verdict (stopping as soon as the verdict appears). Runs on CUDA when available, else CPU.

    python -m benchmarks.judge                 # 8 pairs
    python -m benchmarks.judge --pairs 32 --baseline-max-new-tokens 256 --device cpu
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import torch

from models_backend.judge import (
    JudgeConfig,
    JudgePair,
    Judgment,
    judge_pairs,
    judge_pairs_by_generation,
)
from models_backend.judge_eval import load_records, pair_from_record, sample_records
from models_backend.loaders import ModelSpec, get_model

# shared/ lies beside the repository (as in CI).
DEFAULT_PAIRS_FILE = (
    Path(__file__).resolve().parents[1].parent / "shared/data/mtbench/pairs_human_vs_gpt4.jsonl"
)


def _timed(
    judge: Callable[[Sequence[JudgePair]], list[Judgment]], pairs: Sequence[JudgePair]
) -> tuple[list[Judgment], float]:
    started = time.perf_counter()
    judgments = judge(pairs)
    return judgments, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=8, help="MT-Bench pairs to judge")
    parser.add_argument("--pairs-file", type=Path, default=DEFAULT_PAIRS_FILE)
    parser.add_argument("--seed", type=int, default=0, help="which pairs are sampled")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--max-response-tokens", type=int, default=512)
    parser.add_argument("--baseline-max-new-tokens", type=int, default=128)
    parser.add_argument(
        "--baseline-batch-size",
        type=int,
        default=None,
        help="batch size of generate+parse (default: --batch-size; 1 = one request at a time)",
    )
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1, ...")
    parser.add_argument("--model", default=ModelSpec().source, help="hub id, path or .gguf")
    args = parser.parse_args()

    loaded = get_model(ModelSpec(source=args.model, device=args.device))
    records = sample_records(load_records(args.pairs_file), args.pairs, seed=args.seed)
    pairs = [pair_from_record(record) for record in records]
    config = JudgeConfig(batch_size=args.batch_size, max_response_tokens=args.max_response_tokens)
    # Warm-up on a tiny pair: first calls pay for lazy initialisation in either mode.
    tiny = [JudgePair(prompt="2+2?", response_a="4", response_b="5")]
    judge_pairs(loaded, tiny, config)
    judge_pairs_by_generation(loaded, tiny, config, max_new_tokens=2)

    scored, scored_seconds = _timed(lambda p: judge_pairs(loaded, p, config), pairs)
    baseline_config = JudgeConfig(
        batch_size=args.baseline_batch_size or args.batch_size,
        max_response_tokens=args.max_response_tokens,
    )
    generated, generated_seconds = _timed(
        lambda p: judge_pairs_by_generation(
            loaded, p, baseline_config, max_new_tokens=args.baseline_max_new_tokens
        ),
        pairs,
    )

    prompt_tokens = sum(
        len(loaded.tokenizer(text)["input_ids"])
        for pair in pairs
        for text in (pair.prompt, pair.response_a, pair.response_b)
    )
    print(
        f"model {loaded.name} on {loaded.device} ({loaded.dtype}); "
        f"torch threads {torch.get_num_threads()}"
    )
    print(
        f"{len(pairs)} MT-Bench pairs x 2 orders, batch {args.batch_size}, answers cut to "
        f"{args.max_response_tokens} tokens, ~{prompt_tokens / len(pairs):.0f} content tokens "
        f"per pair\n"
    )
    header = f"{'judge':<34}{'seconds':>9}{'pairs/s':>10}{'consistent':>12}{'unparsed':>10}"
    print(header)
    rows = (
        ("label probabilities", scored, scored_seconds),
        (
            f"generate+parse ({args.baseline_max_new_tokens} tok, b{baseline_config.batch_size})",
            generated,
            generated_seconds,
        ),
    )
    for label, judgments, seconds in rows:
        consistent = sum(j.consistent for j in judgments) / len(judgments)
        unparsed = sum(not o.parsed for j in judgments for o in j.orders)
        print(
            f"{label:<34}{seconds:>9.2f}{len(judgments) / seconds:>10.3f}"
            f"{consistent:>12.0%}{unparsed:>7}/{2 * len(judgments)}"
        )
    agree = sum(s.verdict == g.verdict for s, g in zip(scored, generated, strict=True))
    print(
        f"\nprobability / generate+parse throughput: {generated_seconds / scored_seconds:.1f}x "
        f"(target >= 10x)"
    )
    print(f"same verdict from both judges: {agree}/{len(pairs)}")


if __name__ == "__main__":
    main()
