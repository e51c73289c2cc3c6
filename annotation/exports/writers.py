"""Records to files in bounded memory: JSON Lines, Parquet (row groups), and a Hugging Face
``datasets`` folder (``save_to_disk``, built from the Parquet file)."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, Any

import orjson
import pyarrow as pa
import pyarrow.parquet as pq

ROW_GROUP = 2000

_MESSAGES = pa.list_(pa.struct([("role", pa.string()), ("content", pa.string())]))
_TEXTS = pa.list_(pa.string())
_BASE = [
    ("comparison_id", pa.int64()),
    ("prompt_id", pa.string()),
    ("category", pa.string()),
    ("prompt", _TEXTS),
    ("model_a", pa.string()),
    ("model_b", pa.string()),
    ("answer_a", _TEXTS),
    ("answer_b", _TEXTS),
]
_META = [
    ("comparison_id", pa.int64()),
    ("chosen_model", pa.string()),
    ("rejected_model", pa.string()),
    ("label_source", pa.string()),
]
SCHEMAS = {
    "votes": pa.schema(
        [
            *_BASE,
            ("source", pa.string()),
            ("label_id", pa.int64()),
            ("annotator", pa.string()),
            ("channel", pa.string()),
            ("shown_left", pa.string()),
            ("choice", pa.string()),
            ("winner", pa.string()),
            ("time_to_vote_ms", pa.int64()),
            ("created_at", pa.string()),
            ("annotator_state", pa.string()),
            ("excluded", pa.bool_()),
            ("p_a", pa.float64()),
            ("p_b", pa.float64()),
            ("p_tie", pa.float64()),
        ]
    ),
    "pairs": pa.schema(
        [
            *_BASE,
            ("votes", pa.int64()),
            ("votes_model_a", pa.int64()),
            ("votes_model_b", pa.int64()),
            ("votes_tie", pa.int64()),
            ("votes_both_bad", pa.int64()),
            ("majority", pa.string()),
            ("agreement", pa.float64()),
            ("judge", pa.string()),
            ("judge_verdict", pa.string()),
            ("judge_p_a", pa.float64()),
            ("judge_p_b", pa.float64()),
            ("judge_p_tie", pa.float64()),
            ("judge_consistent", pa.bool_()),
            ("route", pa.string()),
            ("audit_chance", pa.float64()),
            ("surely_human", pa.bool_()),
            ("final_label", pa.string()),
            ("final_source", pa.string()),
        ]
    ),
    "dpo": pa.schema(
        [("prompt", _MESSAGES), ("chosen", _MESSAGES), ("rejected", _MESSAGES), *_META]
    ),
    "openai": pa.schema(
        [
            (
                "input",
                pa.struct(
                    [
                        ("messages", _MESSAGES),
                        ("tools", pa.list_(pa.string())),
                        ("parallel_tool_calls", pa.bool_()),
                    ]
                ),
            ),
            ("preferred_output", _MESSAGES),
            ("non_preferred_output", _MESSAGES),
            *_META,
        ]
    ),
    "hh": pa.schema([("chosen", pa.string()), ("rejected", pa.string()), *_META]),
}


def jsonl_lines(records: Iterable[dict[str, Any]]) -> Iterator[bytes]:
    for record in records:
        yield orjson.dumps(record) + b"\n"


def write_jsonl(records: Iterable[dict[str, Any]], handle: IO[bytes]) -> int:
    rows = 0
    for line in jsonl_lines(records):
        handle.write(line)
        rows += 1
    return rows


def write_parquet(records: Iterable[dict[str, Any]], path: Path, export_format: str) -> int:
    schema = SCHEMAS[export_format]
    rows = 0
    batch: list[dict[str, Any]] = []
    with pq.ParquetWriter(path, schema, compression="zstd") as writer:
        for record in records:
            batch.append(record)
            if len(batch) >= ROW_GROUP:
                writer.write_table(pa.Table.from_pylist(batch, schema=schema))
                rows += len(batch)
                batch = []
        if batch or rows == 0:
            writer.write_table(pa.Table.from_pylist(batch, schema=schema))
            rows += len(batch)
    return rows


class OutputInUse(ValueError):
    """The output path holds something an export must not overwrite."""


# What `save_to_disk` and the dataset card put in a folder: an earlier export, safe to replace.
_EXPORT_FILES = ("dataset_info.json", "state.json", "README.md")


def _is_earlier_export(directory: Path) -> bool:
    names = [entry.name for entry in directory.iterdir()]
    return all(
        name in _EXPORT_FILES or (name.startswith("data-") and name.endswith(".arrow"))
        for name in names
    )


def check_hf_folder(directory: Path) -> None:
    """Refuse a folder the export would clobber: a file, or a folder holding anything but an
    empty folder or an earlier export (which is replaced)."""
    if directory.exists() and not directory.is_dir():
        raise OutputInUse(f"{directory} is a file; name a new folder, or a .jsonl or .parquet file")
    if directory.is_dir() and not _is_earlier_export(directory):
        raise OutputInUse(
            f"{directory} holds other files; name a new or empty folder (an earlier export "
            "is replaced, anything else is left alone)"
        )


def write_hf_dataset(records: Iterable[dict[str, Any]], directory: Path, export_format: str) -> int:
    """A folder that ``datasets.load_from_disk`` opens, built without holding all rows. The
    folder must be new, empty or an earlier export (`check_hf_folder`)."""
    import datasets  # noqa: PLC0415 - heavy, and only this format needs it

    check_hf_folder(directory)
    with tempfile.TemporaryDirectory(prefix="prefarena-hf-") as scratch:
        parquet = Path(scratch) / "data.parquet"
        rows = write_parquet(records, parquet, export_format)
        if rows:
            dataset = datasets.Dataset.from_parquet(
                str(parquet), cache_dir=str(Path(scratch) / "cache"), keep_in_memory=False
            )
        else:  # `from_parquet` cannot read a file without rows; an empty table keeps the schema
            schema = SCHEMAS[export_format]
            empty = pa.RecordBatch.from_pylist([], schema=schema)
            dataset = datasets.Dataset(pa.Table.from_batches([empty], schema=schema))
        if directory.exists():
            shutil.rmtree(directory)
        # One shard even without rows: with none, `load_from_disk` would find no data file.
        dataset.save_to_disk(str(directory), num_shards=1)
        del dataset
    return rows
