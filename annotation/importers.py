"""Importers for prompts, candidates and FastChat MT-Bench data.

Each import is all-or-nothing: every line is validated first, a malformed line is reported
with its file and line number, and nothing is written unless the whole file is valid.
Re-running an import skips what already exists, so imports are safe to repeat.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.db import transaction

from annotation.models import Candidate, ModelEntry, Project, Prompt
from annotation.services import comparisons_create_for_prompts
from prefarena import jsontext

MAX_REPORTED_ERRORS = 20


class ImportFailed(Exception):
    """The input is malformed; `errors` lists "file:line: what is wrong" messages."""

    def __init__(self, errors: list[str]) -> None:
        self.errors = errors
        shown = errors[:MAX_REPORTED_ERRORS]
        more = len(errors) - len(shown)
        text = "\n".join(shown) + (f"\n… and {more} more" if more > 0 else "")
        super().__init__(f"nothing was imported; {len(errors)} problem(s):\n{text}")


@dataclass
class ImportReport:
    prompts_created: int = 0
    models_created: int = 0
    candidates_created: int = 0
    candidates_skipped: int = 0
    comparisons_created: int = 0
    notes: list[str] = field(default_factory=list)

    def summary(self) -> str:
        return (
            f"{self.prompts_created} prompts, {self.models_created} models, "
            f"{self.candidates_created} candidates ({self.candidates_skipped} already there), "
            f"{self.comparisons_created} comparisons created"
        )


def read_jsonl(path: Path, errors: list[str]) -> Iterator[tuple[int, Any]]:
    """Yield (line number, parsed value) for each non-blank line.

    A line that is not JSON is added to `errors` (with its number) and skipped, so one pass
    reports every problem of the file.
    """
    try:
        handle = path.open(encoding="utf-8-sig")  # a byte-order mark, if any, is not text
    except OSError as exc:
        raise ImportFailed([f"{path}: cannot open: {exc.strerror or exc}"]) from exc
    with handle:
        try:
            for number, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                try:
                    yield number, jsontext.loads(line, storable=True)
                except jsontext.JSONTextError as exc:
                    if isinstance(exc, jsontext.UnstorableText):
                        errors.append(f"{path}:{number}: {exc.msg}")
                    else:
                        errors.append(f"{path}:{number}: invalid JSON: {exc.msg}")
        except UnicodeDecodeError as exc:
            raise ImportFailed([f"{path}: not UTF-8 text: {exc.reason}"]) from exc


def _string_list(value: Any) -> list[str] | None:
    if isinstance(value, str) and value.strip():
        return [value]
    if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
        return list(value)
    return None


def _prompt_turns(record: dict[str, Any]) -> list[str] | None:
    if "turns" in record:
        return _string_list(record["turns"])
    if "prompt" in record:
        return _string_list(record["prompt"])
    conversation = record.get("conversation")
    if isinstance(conversation, list) and all(isinstance(m, dict) for m in conversation):
        users = [m.get("content") for m in conversation if m.get("role") == "user"]
        return _string_list(users)
    return None


def _text_field(record: dict[str, Any], name: str) -> str | None:
    value = record.get(name, "")
    if value is None:
        return ""
    return str(value) if isinstance(value, str | int) else None


@dataclass
class _ParsedPrompt:
    external_id: str
    category: str
    turns: list[str]
    reference_answer: str
    derived_id: bool = False  # no id given: one made from the turns


def derived_prompt_id(turns: list[str]) -> str:
    """The id of a prompt imported without one: from its turns, so a re-run finds it."""
    digest = hashlib.sha256(json.dumps(turns, ensure_ascii=False).encode()).hexdigest()
    return f"auto-{digest[:16]}"


def _parse_prompt_line(path: Path, number: int, record: Any) -> _ParsedPrompt | str:
    where = f"{path}:{number}"
    if not isinstance(record, dict):
        return f"{where}: expected a JSON object"
    turns = _prompt_turns(record)
    if turns is None:
        return f"{where}: needs 'turns' (list of strings), 'prompt' (string) or 'conversation'"
    external_id = _text_field(record, "external_id") or _text_field(record, "id")
    category = _text_field(record, "category")
    reference = _text_field(record, "reference_answer")
    if external_id is None or category is None or reference is None:
        return f"{where}: 'id', 'category' and 'reference_answer' must be strings"
    for name, value, most in (("id", external_id, 200), ("category", category, 100)):
        if len(value) > most:
            return f"{where}: {name!r} is {len(value)} characters; at most {most}"
    if not external_id:
        return _ParsedPrompt(derived_prompt_id(turns), category, turns, reference, True)
    return _ParsedPrompt(external_id, category, turns, reference)


@transaction.atomic
def prompts_import(*, project: Project, path: Path) -> ImportReport:
    """Import prompts from JSONL: {"id"?, "category"?, "turns" | "prompt" | "conversation"}."""
    errors: list[str] = []
    parsed: list[_ParsedPrompt] = []
    seen: set[str] = set()
    for number, record in read_jsonl(path, errors):
        result = _parse_prompt_line(path, number, record)
        if isinstance(result, str):
            errors.append(result)
            continue
        if result.external_id in seen:
            if result.derived_id:  # the same text twice, with no id: one prompt
                continue
            errors.append(f"{path}:{number}: duplicate id {result.external_id!r} in the file")
            continue
        seen.add(result.external_id)
        parsed.append(result)
    if errors:
        raise ImportFailed(errors)
    existing = set(
        Prompt.objects.filter(project=project, external_id__in=seen).values_list(
            "external_id", flat=True
        )
    )
    new = [
        Prompt(
            project=project,
            external_id=item.external_id,
            category=item.category,
            turns=item.turns,
            reference_answer=item.reference_answer,
        )
        for item in parsed
        if item.external_id not in existing
    ]
    Prompt.objects.bulk_create(new, batch_size=1000)
    return ImportReport(prompts_created=len(new))


@dataclass
class _ParsedCandidate:
    prompt_id: str
    model: str
    responses: list[str]
    metadata: dict[str, Any]


def _parse_candidate_line(path: Path, number: int, record: Any) -> _ParsedCandidate | str:
    where = f"{path}:{number}"
    if not isinstance(record, dict):
        return f"{where}: expected a JSON object"
    prompt_id = _text_field(record, "prompt_id")
    model = record.get("model")
    responses = _string_list(record.get("responses", record.get("response")))
    metadata = record.get("metadata", {})
    if not prompt_id:
        return f"{where}: needs 'prompt_id' (the prompt's id)"
    if not isinstance(model, str) or not model.strip() or len(model) > 200:
        return f"{where}: needs 'model' (a name of at most 200 characters)"
    if responses is None:
        return f"{where}: needs 'response' (string) or 'responses' (list of strings)"
    if not isinstance(metadata, dict):
        return f"{where}: 'metadata' must be an object"
    return _ParsedCandidate(prompt_id, model.strip(), responses, metadata)


@transaction.atomic
def candidates_import(
    *, project: Project, path: Path, create_comparisons: bool = True
) -> ImportReport:
    """Import model outputs from JSONL: {"prompt_id", "model", "response" | "responses"}.

    Unknown models are created as imported-only competitors; a prompt id that does not exist
    in the project is an error. With `create_comparisons`, every pair of models answering the
    same prompt becomes a comparison.
    """
    errors: list[str] = []
    parsed: list[tuple[int, _ParsedCandidate]] = []
    for number, record in read_jsonl(path, errors):
        result = _parse_candidate_line(path, number, record)
        if isinstance(result, str):
            errors.append(result)
        else:
            parsed.append((number, result))
    prompts = {
        p.external_id: p
        for p in Prompt.objects.filter(
            project=project, external_id__in={item.prompt_id for _, item in parsed}
        )
    }
    seen: set[tuple[str, str]] = set()
    for number, item in parsed:
        if item.prompt_id not in prompts:
            errors.append(
                f"{path}:{number}: no prompt with id {item.prompt_id!r} in {project.slug}"
            )
        elif len(item.responses) != len(prompts[item.prompt_id].turns):
            errors.append(
                f"{path}:{number}: {len(item.responses)} response(s) for a prompt with "
                f"{len(prompts[item.prompt_id].turns)} turn(s)"
            )
        elif (item.prompt_id, item.model) in seen:
            errors.append(
                f"{path}:{number}: a second answer of {item.model!r} to {item.prompt_id!r}"
            )
        seen.add((item.prompt_id, item.model))
    if errors:
        raise ImportFailed(errors)
    report = ImportReport()
    models = _models_get_or_create(project, {item.model for _, item in parsed}, report)
    existing = set(
        Candidate.objects.filter(prompt__in=prompts.values(), settings_hash="").values_list(
            "prompt_id", "model_id"
        )
    )
    new: list[Candidate] = []
    for _, item in parsed:
        prompt, model = prompts[item.prompt_id], models[item.model]
        if (prompt.pk, model.pk) in existing:
            report.candidates_skipped += 1
            continue
        new.append(
            Candidate(prompt=prompt, model=model, responses=item.responses, metadata=item.metadata)
        )
    Candidate.objects.bulk_create(new, batch_size=1000)
    report.candidates_created = len(new)
    if create_comparisons:
        report.comparisons_created = comparisons_create_for_prompts(
            project=project, prompts=prompts.values()
        )
    return report


def _models_get_or_create(
    project: Project, names: set[str], report: ImportReport
) -> dict[str, ModelEntry]:
    models = {m.name: m for m in ModelEntry.objects.filter(project=project, name__in=names)}
    for name in sorted(names - models.keys()):
        models[name] = ModelEntry.objects.create(project=project, name=name)
        report.models_created += 1
    return models


# --- MT-Bench ---------------------------------------------------------------------------

MTBENCH_SOURCE = (
    "MT-Bench (Zheng et al. 2023, arXiv:2306.05685): questions and answers from FastChat, "
    "Apache-2.0"
)


def mtbench_prompt_id(question_id: int | str, turn: int) -> str:
    return f"mtbench-{question_id}-t{turn}"


def _mtbench_questions(directory: Path, errors: list[str]) -> dict[str, dict[str, Any]]:
    questions: dict[str, dict[str, Any]] = {}
    path = directory / "question.jsonl"
    for number, record in read_jsonl(path, errors):
        if (
            not isinstance(record, dict)
            or "question_id" not in record
            or _string_list(record.get("turns")) is None
        ):
            errors.append(f"{path}:{number}: needs 'question_id' and 'turns' (list of strings)")
            continue
        question_id = str(record["question_id"])
        if question_id in questions:
            errors.append(f"{path}:{number}: question_id {question_id} appears twice")
            continue
        questions[question_id] = record
    return questions


def _mtbench_references(directory: Path) -> dict[str, list[str]]:
    path = directory / "reference_answer" / "gpt-4.jsonl"
    if not path.exists():
        return {}
    references: dict[str, list[str]] = {}
    errors: list[str] = []
    for number, record in read_jsonl(path, errors):
        try:
            turns = _string_list(record["choices"][0]["turns"])
        except (KeyError, IndexError, TypeError):
            turns = None
        if turns is None:
            errors.append(f"{path}:{number}: needs 'question_id' and 'choices[0].turns'")
            continue
        references[str(record["question_id"])] = turns
    if errors:  # a broken reference file is reported, not silently dropped
        raise ImportFailed(errors)
    return references


def _mtbench_answers(
    directory: Path, models: list[str] | None, errors: list[str]
) -> dict[str, dict[str, list[str]]]:
    """model name -> question id -> answer turns."""
    answer_dir = directory / "model_answer"
    files = sorted(answer_dir.glob("*.jsonl"))
    available = {f.stem for f in files}
    if models:
        for missing in sorted(set(models) - available):
            errors.append(f"{answer_dir}: no answers for model {missing!r}")
        files = [f for f in files if f.stem in set(models)]
    answers: dict[str, dict[str, list[str]]] = {}
    for path in files:
        per_question: dict[str, list[str]] = {}
        for number, record in read_jsonl(path, errors):
            try:
                turns = record["choices"][0]["turns"]
                question_id = str(record["question_id"])
            except (KeyError, IndexError, TypeError):
                errors.append(f"{path}:{number}: needs 'question_id' and 'choices[0].turns'")
                continue
            # A string is no list of turns: split into characters it would import as garbage.
            if not isinstance(turns, list) or not all(isinstance(t, str) for t in turns):
                errors.append(f"{path}:{number}: choices[0].turns must be a list of strings")
                continue
            per_question[question_id] = turns
        answers[path.stem] = per_question
    return answers


@transaction.atomic
def mtbench_import(
    *,
    directory: Path,
    project_slug: str,
    models: list[str] | None = None,
    questions: list[str] | None = None,
    title: str = "",
    votes_per_comparison: int = 3,
) -> ImportReport:
    """Import FastChat MT-Bench files (question.jsonl, model_answer/*.jsonl).

    Each question becomes two prompts: turn 1, and turn 2 with turn 1 as context; each
    model's answers become candidates, and every pair of models a comparison.
    """
    errors: list[str] = []
    if not (directory / "question.jsonl").exists():
        raise ImportFailed([f"{directory}: no question.jsonl here (is it an MT-Bench folder?)"])
    if votes_per_comparison < 1:
        raise ImportFailed([f"votes per comparison must be 1 or more, not {votes_per_comparison}"])
    all_questions = _mtbench_questions(directory, errors)
    answers = _mtbench_answers(directory, models, errors)
    if not answers and not errors:
        errors.append(f"{directory / 'model_answer'}: no model answers found")
    if not all_questions and not errors:
        errors.append(f"{directory / 'question.jsonl'}: no questions in it")
    for missing in sorted(set(questions or []) - set(all_questions)):
        errors.append(f"{directory / 'question.jsonl'}: no question {missing!r}")
    if errors:
        raise ImportFailed(errors)
    wanted = [q for q in all_questions if questions is None or q in set(questions)]
    references = _mtbench_references(directory)
    project, _ = Project.objects.get_or_create(
        slug=project_slug,
        defaults={
            "title": title or f"MT-Bench arena ({project_slug})",
            "votes_per_comparison": votes_per_comparison,
            "guidelines": MTBENCH_GUIDELINES,
        },
    )
    report = ImportReport()
    prompts = _mtbench_prompts(project, wanted, all_questions, references, report)
    model_entries = _models_get_or_create(project, set(answers), report)
    existing = set(
        Candidate.objects.filter(prompt__in=prompts.values(), settings_hash="").values_list(
            "prompt_id", "model_id"
        )
    )
    new: list[Candidate] = []
    for model_name, per_question in sorted(answers.items()):
        model = model_entries[model_name]
        for (question_id, turn), prompt in prompts.items():
            turns = per_question.get(question_id)
            if turns is None or len(turns) < turn:
                continue
            if (prompt.pk, model.pk) in existing:
                report.candidates_skipped += 1
                continue
            new.append(
                Candidate(
                    prompt=prompt,
                    model=model,
                    responses=turns[:turn],
                    metadata={"source": "mtbench", "question_id": question_id, "turn": turn},
                )
            )
    Candidate.objects.bulk_create(new, batch_size=1000)
    report.candidates_created = len(new)
    report.comparisons_created = comparisons_create_for_prompts(
        project=project, prompts=prompts.values()
    )
    return report


def _mtbench_prompts(
    project: Project,
    wanted: list[str],
    questions: dict[str, dict[str, Any]],
    references: dict[str, list[str]],
    report: ImportReport,
) -> dict[tuple[str, int], Prompt]:
    prompts: dict[tuple[str, int], Prompt] = {}
    for question_id in wanted:
        record = questions[question_id]
        turns = _string_list(record["turns"]) or []
        reference = references.get(question_id) or record.get("reference") or []
        for turn in range(1, len(turns) + 1):
            prompt, created = Prompt.objects.get_or_create(
                project=project,
                external_id=mtbench_prompt_id(question_id, turn),
                defaults={
                    "category": str(record.get("category", ""))[:100],
                    "turns": turns[:turn],
                    "reference_answer": str(reference[turn - 1]) if len(reference) >= turn else "",
                    "source": MTBENCH_SOURCE,
                },
            )
            report.prompts_created += int(created)
            prompts[(question_id, turn)] = prompt
    return prompts


MTBENCH_GUIDELINES = """\
## How to vote

You see one user request (sometimes a two-turn conversation) and two anonymous answers, **A**
(left) and **B** (right). Pick the answer that is more helpful, correct and relevant.

- **A is better** / **B is better**: one answer is clearly preferable.
- **Tie**: both are about equally good.
- **Both are bad**: neither answer is acceptable.

Judge the content, not the length or the style alone. For a two-turn conversation, judge the
answer to the **last** user message, with the earlier turn as context. The model names are shown
only after you vote.

*Data: MT-Bench (Zheng et al. 2023), questions and answers from FastChat, Apache-2.0.*
"""
