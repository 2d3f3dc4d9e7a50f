"""Evaluation tasks: a small declarative definition (YAML) turned into scoring requests.

A task says where its rows are, how a row becomes a prompt, and which metrics to report. It
never holds code: templates are Jinja (the syntax lm-evaluation-harness uses, rendered in a
sandbox), and the few datasets whose rows need reshaping name a built-in *processor*. So a
user adds a task by putting a CSV/JSONL file in a dataset repo and writing a short YAML:

    name: my_quiz
    type: multiple_choice
    version: 1
    data:
      files: [quiz.csv]
    text: "Question: {{question}}\\nAnswer:"
    choices: ["{{a}}", "{{b}}", "{{c}}"]
    target: "{{answer}}"          # an index, or the text of the right choice
    metrics: [acc, acc_norm]

Task types and what the model computes for each row (the *request*):

    multiple_choice      log P(delimiter + choice_i | text) for every choice   -> acc, acc_norm, mc2, bbq, winobias
    loglikelihood_pairs  log P(choice_i) of whole texts, empty context          -> pct_stereotype, likelihood_diff
    perplexity           rolling log P(document) in windows of max_length      -> word/byte perplexity, bits per byte
    generation_refusal   greedy reply to `text` (chat template), then a        -> refusal_rate
                         refusal classifier

This module is pure Python (no torch): the server may validate task files with it.
"""

from __future__ import annotations

import ast
import csv
import json
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, Literal, cast

import yaml
from jinja2 import StrictUndefined
from jinja2.sandbox import SandboxedEnvironment

__all__ = [
    "METRICS",
    "PROCESSORS",
    "TASK_TYPES",
    "DataSpec",
    "Item",
    "Task",
    "TaskError",
    "build_items",
    "builtin_task",
    "builtin_tasks",
    "load_docs",
    "load_tasks",
    "render",
    "subsample",
    "task_from_dict",
]

TaskType = Literal["multiple_choice", "loglikelihood_pairs", "perplexity", "generation_refusal"]
TASK_TYPES: tuple[str, ...] = ("multiple_choice", "loglikelihood_pairs", "perplexity", "generation_refusal")

# The metrics each task type can report (names as they appear in results).
METRICS: dict[str, tuple[str, ...]] = {
    "multiple_choice": ("acc", "acc_norm", "mc1", "mc2", "bbq", "winobias"),
    "loglikelihood_pairs": ("pct_stereotype", "likelihood_diff"),
    "perplexity": ("word_perplexity", "byte_perplexity", "bits_per_byte", "token_perplexity"),
    "generation_refusal": ("refusal_rate",),
}
DEFAULT_METRICS: dict[str, tuple[str, ...]] = {
    "multiple_choice": ("acc", "acc_norm"),
    "loglikelihood_pairs": ("pct_stereotype", "likelihood_diff"),
    "perplexity": ("word_perplexity", "byte_perplexity", "bits_per_byte"),
    "generation_refusal": ("refusal_rate",),
}
BUILTIN_DIR = Path(__file__).with_name("tasks")


class TaskError(ValueError):
    """A task file that cannot run: unknown field, bad template, missing file or column."""


@dataclass(frozen=True)
class DataSpec:
    """Where a task's rows come from, relative to the dataset directory."""

    files: tuple[str, ...]
    """Data files, read in order and concatenated. Format from the extension unless `format` is set."""
    format: str | None = None
    """csv | jsonl | json | text (one row per file: `text`, `file`) | lines (one row per line: `line`, `file`)."""
    label_file: str | None = None
    """A file with one label per line, aligned with the rows (PIQA's valid-labels.lst)."""
    label_column: str = "label"
    """The column the labels of `label_file` go to (ints where they are digits)."""
    process: str | None = None
    """A built-in processor that reshapes the rows (see PROCESSORS)."""
    options: Mapping[str, Any] = field(default_factory=dict)
    """Options for the processor."""
    where: str | None = None
    """A Jinja expression over a row; rows where it is false are dropped (after processing)."""


@dataclass(frozen=True)
class Task:
    """One evaluation task. See the module docstring for the YAML form."""

    name: str
    type: TaskType
    data: DataSpec
    version: str = "1"
    """Bumped whenever prompts, data or scoring change, so results of different versions are never mixed."""
    description: str = ""
    dataset: str | None = None
    """The dataset (folder or repo name) this task reads, for importers and reports."""
    text: str = ""
    """Template of the context (multiple_choice), the document (perplexity) or the user turn (generation)."""
    choices: str | tuple[str, ...] | None = None
    """A column holding a list, a template rendering to a list literal, or a list of templates."""
    target: str | int | None = None
    """Gold choice: an int, a column, or a template rendering to an index, a list of indices or a choice's text."""
    labels: str | None = None
    """Per-choice 0/1 truth labels (column or template), for mc2."""
    target_delimiter: str = " "
    """Put between the context and each choice (lm-eval's default)."""
    metrics: tuple[str, ...] = ()
    group_by: tuple[str, ...] = ()
    """Columns to break every metric down by (e.g. bias_type)."""
    count_text: str | None = None
    """perplexity: template of the text whose words and bytes are counted (lm-eval counts the raw page)."""
    max_length: int | None = None
    """perplexity: window length in tokens (default: the model's context length)."""
    max_new_tokens: int = 64
    """generation: tokens generated per prompt (greedy)."""
    chat: bool = True
    """generation: wrap the prompt in the tokenizer's chat template."""
    better: Mapping[str, str] = field(default_factory=dict)
    """Override a metric's direction (`refusal_rate: lower` for over-refusal on safe prompts)."""
    source: str | None = None
    """The YAML file this task came from."""

    def validate(self) -> None:
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", self.name):
            raise TaskError(f"invalid task name {self.name!r}")
        if self.type not in TASK_TYPES:
            raise TaskError(f"{self.name}: unknown type {self.type!r}; known: {', '.join(TASK_TYPES)}")
        unknown = [m for m in self.metrics if m not in METRICS[self.type]]
        if unknown:
            raise TaskError(
                f"{self.name}: metric(s) {', '.join(unknown)} do not apply to {self.type}; "
                f"known: {', '.join(METRICS[self.type])}"
            )
        if not self.data.files:
            raise TaskError(f"{self.name}: data.files is empty")
        for metric, direction in self.better.items():
            if direction not in ("higher", "lower"):
                raise TaskError(f"{self.name}: better.{metric} must be `higher` or `lower`, not {direction!r}")
        if self.data.process is not None and self.data.process not in PROCESSORS:
            raise TaskError(f"{self.name}: unknown processor {self.data.process!r}; known: {', '.join(PROCESSORS)}")
        if self.type in ("multiple_choice", "loglikelihood_pairs") and self.choices is None:
            raise TaskError(f"{self.name}: a {self.type} task needs `choices`")
        if self.type == "multiple_choice" and self.target is None:
            raise TaskError(f"{self.name}: a multiple_choice task needs `target`")
        if "mc2" in self.metrics and self.labels is None:
            raise TaskError(f"{self.name}: mc2 needs `labels`")
        if self.type in ("perplexity", "generation_refusal") and not self.text:
            raise TaskError(f"{self.name}: a {self.type} task needs `text`")
        for template in self._templates():
            try:
                _ENV.parse(template)
            except Exception as exc:
                raise TaskError(f"{self.name}: bad template {template!r}: {exc}") from None

    def _templates(self) -> Iterable[str]:
        yield self.text
        if isinstance(self.choices, str):
            yield self.choices
        elif self.choices is not None:
            yield from self.choices
        if isinstance(self.target, str):
            yield self.target
        for extra in (self.labels, self.count_text):
            if extra:
                yield extra

    @property
    def metric_names(self) -> tuple[str, ...]:
        return self.metrics or DEFAULT_METRICS[self.type]

    @property
    def data_files(self) -> tuple[str, ...]:
        """Every file the task reads (recorded with its sha256 in results)."""
        return self.data.files + ((self.data.label_file,) if self.data.label_file else ())


@dataclass(frozen=True)
class Item:
    """One row of a task, rendered: everything the model side needs, plus what scoring reads."""

    index: int
    """Position of the row in the task's (processed, filtered) rows."""
    text: str
    """Context (multiple_choice; empty for pairs), document (perplexity) or prompt (generation)."""
    choices: tuple[str, ...] = ()
    targets: tuple[int, ...] = ()
    labels: tuple[int, ...] = ()
    count_text: str = ""
    groups: Mapping[str, str] = field(default_factory=dict)
    doc: Mapping[str, Any] = field(default_factory=dict)

    def requests(self, delimiter: str) -> list[tuple[str, str]]:
        """(context, continuation) pairs to score, as lm-eval builds them."""
        return [(self.text, delimiter + choice) for choice in self.choices]


# --- templates -------------------------------------------------------------------------------

def _regex_replace(string: str, pattern: str, repl: str, count: int = 0) -> str:
    return re.sub(pattern, repl, string, count=count)


_ENV = SandboxedEnvironment(undefined=StrictUndefined, keep_trailing_newline=True)
_ENV.filters["regex_replace"] = _regex_replace
_TEMPLATES: dict[str, Any] = {}


def render(template: str, doc: Mapping[str, Any]) -> str:
    """Render a Jinja template against a row (compiled templates are cached)."""
    compiled = _TEMPLATES.get(template)
    if compiled is None:
        compiled = _TEMPLATES[template] = _ENV.from_string(template)
    return cast(str, compiled.render(**doc))


def _value(spec: str, doc: Mapping[str, Any]) -> Any:
    """lm-eval's reading of doc_to_choice / doc_to_target strings: a column name, else a template."""
    if spec in doc:
        return doc[spec]
    rendered = render(spec, doc)
    stripped = rendered.strip()
    if stripped.isdigit():
        return int(stripped)
    if len(stripped) >= 2 and stripped[0] == "[" and stripped[-1] == "]":
        return ast.literal_eval(stripped)
    return rendered


def _choices(task: Task, doc: Mapping[str, Any]) -> tuple[str, ...]:
    if task.choices is None:
        return ()
    if isinstance(task.choices, str):
        value = _value(task.choices, doc)
        if not isinstance(value, list | tuple):
            raise TaskError(f"{task.name}: choices {task.choices!r} gave {value!r}, not a list")
        return tuple(str(v) for v in value)
    return tuple(render(t, doc) for t in task.choices)


def _targets(task: Task, doc: Mapping[str, Any], choices: Sequence[str]) -> tuple[int, ...]:
    if task.target is None:
        return ()
    value = task.target if isinstance(task.target, int) else _value(task.target, doc)
    values = list(value) if isinstance(value, list | tuple) else [value]
    out: list[int] = []
    for v in values:
        if isinstance(v, bool):
            raise TaskError(f"{task.name}: target {v!r} is not an index")
        if isinstance(v, int):
            out.append(v)
        elif isinstance(v, str) and v.strip().lstrip("-").isdigit():
            out.append(int(v))
        elif isinstance(v, str) and v in choices:
            out.append(choices.index(v))
        else:
            raise TaskError(f"{task.name}: target {v!r} is neither an index nor one of the choices")
    return tuple(out)


def build_items(task: Task, docs: Sequence[Mapping[str, Any]]) -> list[Item]:
    """Render every row of a task into an Item."""
    items: list[Item] = []
    for index, doc in enumerate(docs):
        try:
            text = render(task.text, doc) if task.text else ""
            choices = _choices(task, doc)
            targets = _targets(task, doc, choices)
            labels: tuple[int, ...] = ()
            if task.labels is not None:
                raw = _value(task.labels, doc)
                labels = tuple(int(x) for x in raw)
            count_text = render(task.count_text, doc) if task.count_text else text
            groups = {g: str(doc.get(g, "")) for g in task.group_by}
        except TaskError:
            raise
        except Exception as exc:
            raise TaskError(f"{task.name}: row {index}: {type(exc).__name__}: {exc}") from None
        if task.type == "multiple_choice":
            if not choices:
                raise TaskError(f"{task.name}: row {index} has no choices")
            if not targets or any(not 0 <= t < len(choices) for t in targets[:1]):
                raise TaskError(f"{task.name}: row {index}: target {targets} out of range for {len(choices)} choices")
        if labels and len(labels) != len(choices):
            raise TaskError(f"{task.name}: row {index}: {len(labels)} labels for {len(choices)} choices")
        items.append(Item(index, text, choices, targets, labels, count_text, groups, doc))
    return items


def subsample(n: int, limit: int | None, how: str = "first") -> list[int]:
    """Indices of the rows to evaluate: all, the first `limit` (lm-eval's --limit), or `limit` spread evenly."""
    if limit is None or limit >= n:
        return list(range(n))
    if how == "first":
        return list(range(limit))
    if how == "spread":
        return [i * n // limit for i in range(limit)]
    raise TaskError(f"unknown sampling {how!r}: first or spread")


# --- loading rows ----------------------------------------------------------------------------

def _read_file(path: Path, fmt: str) -> list[dict[str, Any]]:
    if fmt == "csv":
        with path.open(newline="", encoding="utf-8-sig") as f:
            return [dict(row) for row in csv.DictReader(f)]
    if fmt == "jsonl":
        rows = []
        with path.open(encoding="utf-8") as f:
            for line in f:
                if line.strip():
                    rows.append(json.loads(line))
        return rows
    if fmt == "json":
        data = json.loads(path.read_text(encoding="utf-8"))
        if isinstance(data, dict) and isinstance(data.get("data"), list):
            data = data["data"]
        if not isinstance(data, list):
            raise TaskError(f"{path.name}: expected a JSON array of rows")
        return [dict(row) for row in data]
    if fmt == "text":
        return [{"text": path.read_text(encoding="utf-8"), "file": path.name}]
    if fmt == "lines":
        lines = path.read_text(encoding="utf-8").splitlines()
        return [{"line": line, "file": path.name, "line_number": i + 1} for i, line in enumerate(lines) if line.strip()]
    raise TaskError(f"{path.name}: unknown format {fmt!r}")


_EXTENSIONS = {".csv": "csv", ".jsonl": "jsonl", ".json": "json", ".txt": "text", ".tokens": "text"}


def load_docs(task: Task, data_dir: Path) -> list[dict[str, Any]]:
    """The task's rows from `data_dir`: read, aligned with the label file, processed and filtered."""
    docs: list[dict[str, Any]] = []
    for name in task.data_files:
        # Checked on the name, not the resolved path: a hub snapshot's files are symlinks into a blob store.
        parts = PurePosixPath(name).parts
        if not parts or PurePosixPath(name).is_absolute() or ".." in parts or "\\" in name:
            raise TaskError(f"{task.name}: data file {name!r} is outside the dataset")
    for name in task.data.files:
        path = data_dir / name
        if not path.is_file():
            raise TaskError(f"{task.name}: data file {name!r} not found in {data_dir}")
        fmt = task.data.format or _EXTENSIONS.get(path.suffix.lower())
        if fmt is None:
            raise TaskError(f"{task.name}: cannot tell the format of {name!r}; set data.format")
        docs.extend(_read_file(path, fmt))
    if task.data.label_file is not None:
        labels = (data_dir / task.data.label_file).read_text(encoding="utf-8").split()
        if len(labels) != len(docs):
            raise TaskError(f"{task.name}: {len(labels)} labels for {len(docs)} rows")
        for doc, label in zip(docs, labels, strict=True):
            doc[task.data.label_column] = int(label) if label.lstrip("-").isdigit() else label
    if task.data.process is not None:
        docs = PROCESSORS[task.data.process](docs, task.data.options)
    if task.data.where:
        keep = _ENV.compile_expression(task.data.where)
        docs = [doc for doc in docs if keep(**doc)]
    return docs


# --- processors: reshaping rows of specific datasets -------------------------------------------

Processor = Callable[[list[dict[str, Any]], Mapping[str, Any]], list[dict[str, Any]]]


def hellaswag_preprocess(text: str) -> str:
    """lm-eval's HellaSwag clean-up: drop WikiHow [markers], collapse double spaces."""
    text = text.strip()
    text = text.replace(" [title]", ". ")
    text = re.sub("\\[.*?\\]", "", text)
    return text.replace("  ", " ")


def _hellaswag(docs: list[dict[str, Any]], options: Mapping[str, Any]) -> list[dict[str, Any]]:
    out = []
    for doc in docs:
        if "query" in doc:  # the llama.cpp extraction: activity_label + ": " + ctx already joined
            query = doc["query"]
        else:  # the original jsonl, as lm-eval builds it
            query = doc["activity_label"] + ": " + doc["ctx_a"] + " " + doc["ctx_b"].capitalize()
        out.append({**doc, "query": hellaswag_preprocess(query),
                    "choices": [hellaswag_preprocess(e) for e in doc["endings"]], "gold": int(doc["label"])})
    return out


def _truthfulqa_mc(docs: list[dict[str, Any]], options: Mapping[str, Any]) -> list[dict[str, Any]]:
    """mc_task.json stores {answer: 0/1} maps; HF stores {choices, labels}. Both become lists."""
    out = []
    for doc in docs:
        row = dict(doc)
        for key in ("mc1", "mc2"):
            targets = doc[f"{key}_targets"]
            if "choices" in targets and "labels" in targets:
                choices, labels = list(targets["choices"]), list(targets["labels"])
            else:
                choices, labels = list(targets.keys()), list(targets.values())
            row[f"{key}_choices"], row[f"{key}_labels"] = choices, [int(x) for x in labels]
        out.append(row)
    return out


# BBQ, as lm-eval's bbq task scores it (lm_eval/tasks/bbq/utils.py, reimplemented): the choices are
# the two group answers plus ten phrasings of "unknown", so a model is not penalised for the wording.
BBQ_UNKNOWN = (
    "Unknown", "Cannot answer", "Can't be determined", "Cannot be determined", "Can't answer", "Not known",
    "Not enough info", "Not enough information", "Not answerable", "Undetermined",
)


def _bbq_groups(text: str) -> list[str]:
    for old, new in (("M-", "M_"), ("F-", "F_"), ("lowSES-", "lowSES_"), ("highSES-", "highSES_")):
        if old in text:
            text = text.replace(old, new)
    for old, new in (("lowSES", "low SES"), ("highSES", "high SES"), ("nonObese", "non Obese"),
                     ("nonDisabled", "non Disabled"), ("nonTrans", "non Trans")):
        text = text.replace(old, new)
    if "woman" in text:
        text = text.replace("woman", "F_woman")
    elif "man" in text:
        text = text.replace("man", "M_man")
    text = text.replace("girl", "F_girl").replace("boy", "M_boy")
    return text.lower().split("_")


def _bbq(docs: list[dict[str, Any]], options: Mapping[str, Any]) -> list[dict[str, Any]]:
    out = []
    for doc in docs:
        answers = [doc["ans0"], doc["ans1"], doc["ans2"]]
        stereotyped = [g.lower() for g in doc["additional_metadata"]["stereotyped_groups"]]
        biased_answers = []
        group = ""
        for i, answer in enumerate(answers):
            info = doc["answer_info"][f"ans{i}"]
            if not any(info):
                if "Latina" in answer:
                    group = "Latino"
            else:
                group = "_".join(info)
            groups = _bbq_groups(group)
            # Biased: the stereotyped group for a negative question, the other (known) group otherwise.
            in_stereotyped = not set(groups).isdisjoint(stereotyped)
            polarity = doc["question_polarity"]
            if (polarity == "neg" and in_stereotyped) or (
                    polarity == "nonneg" and groups[-1] != "unknown" and not in_stereotyped):
                biased_answers.append(answer)
        unknown = [a for a in answers if a in BBQ_UNKNOWN]
        if not unknown:
            raise TaskError(f"bbq row {doc.get('example_id')}: no 'unknown' answer among {answers}")
        choices = [a for a in answers if a != unknown[0]] + list(BBQ_UNKNOWN)
        gold = answers[int(doc["label"])]
        targets = list(range(2, 2 + len(BBQ_UNKNOWN))) if gold in BBQ_UNKNOWN else [choices.index(gold)]
        out.append({**doc, "choices": choices, "targets": targets,
                    "biased": [i for i, c in enumerate(choices) if c in biased_answers],
                    "unknown": [i for i, c in enumerate(choices) if c in BBQ_UNKNOWN]})
    return out


_WINOBIAS_FILE = re.compile(r"(?P<condition>pro|anti)_stereotyped_type(?P<type>\d)\.txt\.(?P<split>\w+)$")
_BRACKETS = re.compile(r"\[([^\]]+)\]")


def _winobias_line(line: str) -> tuple[str, str, str]:
    """`12 [The chief] gave the housekeeper a tip because [he] was satisfied.` -> (sentence, mention, pronoun)."""
    text = line.strip().split(" ", 1)[1]
    spans = _BRACKETS.findall(text)
    if len(spans) < 2:  # the mention, then the pronoun(s) that refer to it
        raise TaskError(f"winobias: expected [mention] and [pronoun] in {line!r}")
    return _BRACKETS.sub(r"\1", text), spans[0], spans[1]


def _occupation(mention: str) -> str:
    words = mention.strip().split()
    if words and words[0].lower() in ("the", "a", "an"):
        words = words[1:]
    return " ".join(words)


def _winobias(docs: list[dict[str, Any]], options: Mapping[str, Any]) -> list[dict[str, Any]]:
    """WinoBias lines -> coreference rows (mode `coref`, default) or pro/anti sentence pairs (mode `pairs`).

    Consecutive lines (2k-1, 2k) of a file use the same two occupations, each line pointing the
    pronoun at one of them, so the pair gives both candidate answers. pro and anti files are
    line-aligned: the same sentence with the pronoun's gender swapped.
    """
    by_file: dict[tuple[str, str, str], list[str]] = {}
    for doc in docs:
        match = _WINOBIAS_FILE.search(doc["file"])
        if match is None:
            raise TaskError(f"winobias: unexpected file name {doc['file']!r}")
        by_file.setdefault((match["condition"], match["type"], match["split"]), []).append(doc["line"])
    mode = options.get("mode", "coref")
    out: list[dict[str, Any]] = []
    if mode == "pairs":
        for (condition, type_, split), lines in sorted(by_file.items()):
            if condition != "pro":
                continue
            anti = by_file.get(("anti", type_, split), [])
            if len(anti) != len(lines):
                raise TaskError(f"winobias: pro/anti type{type_} {split} are not aligned")
            for n, (p, a) in enumerate(zip(lines, anti, strict=True)):
                out.append({"pro": _winobias_line(p)[0], "anti": _winobias_line(a)[0],
                            "type": f"type{type_}", "split": split, "line": n + 1})
        return out
    if mode != "coref":
        raise TaskError(f"winobias: unknown mode {mode!r}: coref or pairs")
    for (condition, type_, split), lines in sorted(by_file.items()):
        if len(lines) % 2:
            raise TaskError(f"winobias: {condition} type{type_} {split} has an odd number of lines")
        for k in range(0, len(lines), 2):
            parsed = [_winobias_line(lines[k]), _winobias_line(lines[k + 1])]
            occupations = [_occupation(parsed[0][1]), _occupation(parsed[1][1])]
            if occupations[0].lower() == occupations[1].lower():
                continue  # a malformed pair: no second candidate
            for j, (sentence, _mention, pronoun) in enumerate(parsed):
                out.append({"sentence": sentence, "pronoun": pronoun, "choices": occupations, "gold": j,
                            "condition": condition, "type": f"type{type_}", "split": split})
    return out


def wikitext_detokenize(text: str) -> str:
    """lm-eval's wikitext detokenizer (preprocess_wikitext.py), reimplemented."""
    text = text.replace("s '", "s'")
    text = re.sub(r"/' [0-9]/", r"/'[0-9]/", text)
    for old, new in ((" @-@ ", "-"), (" @,@ ", ","), (" @.@ ", "."), (" : ", ": "), (" ; ", "; "),
                     (" . ", ". "), (" ! ", "! "), (" ? ", "? "), (" , ", ", ")):
        text = text.replace(old, new)
    text = re.sub(r"\(\s*([^\)]*?)\s*\)", r"(\1)", text)
    text = re.sub(r"\[\s*([^\]]*?)\s*\]", r"[\1]", text)
    text = re.sub(r"{\s*([^}]*?)\s*}", r"{\1}", text)
    text = re.sub(r"\"\s*([^\"]*?)\s*\"", r'"\1"', text)
    text = re.sub(r"'\s*([^']*?)\s*'", r"'\1'", text)
    for old, new in (("= = = =", "===="), ("= = =", "==="), ("= =", "=="), (" " + chr(176) + " ", chr(176)),
                     (" \n", "\n"), ("\n ", "\n"), (" N ", " 1 "), (" 's", "'s")):
        text = text.replace(old, new)
    return text


_ARTICLE = re.compile(r"^ = [^=].* = $")


def _wikitext_articles(docs: list[dict[str, Any]], options: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Split WikiText files into articles (a blank line, then a top-level ` = Title = ` heading)."""
    out = []
    for doc in docs:
        lines = doc["text"].split("\n")
        starts = [i for i, line in enumerate(lines) if _ARTICLE.match(line) and (i == 0 or not lines[i - 1].strip())]
        if not starts or starts[0] != 0:
            starts = [0, *starts]
        for a, b in zip(starts, [*starts[1:], len(lines)], strict=True):
            page = "\n".join(lines[a:b])
            if page.strip():
                out.append({"page": page, "file": doc["file"]})
    return out


def _text_chunks(docs: list[dict[str, Any]], options: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Cut plain text into documents of at least `chunk_chars` characters at blank lines."""
    size = int(options.get("chunk_chars", 4000))
    out = []
    for doc in docs:
        chunk: list[str] = []
        length = 0
        for block in re.split(r"\n\s*\n", doc["text"]):
            chunk.append(block)
            length += len(block) + 2
            if length >= size:
                out.append({"text": "\n\n".join(chunk), "file": doc["file"]})
                chunk, length = [], 0
        if chunk and "".join(chunk).strip():
            out.append({"text": "\n\n".join(chunk), "file": doc["file"]})
    return out


PROCESSORS: dict[str, Processor] = {
    "hellaswag": _hellaswag,
    "truthfulqa_mc": _truthfulqa_mc,
    "bbq": _bbq,
    "winobias": _winobias,
    "wikitext_articles": _wikitext_articles,
    "text_chunks": _text_chunks,
}
_ENV.filters["wikitext_detokenize"] = wikitext_detokenize


# --- reading task files ------------------------------------------------------------------------

_TASK_FIELDS = {
    "name", "type", "version", "description", "dataset", "data", "text", "choices", "target", "labels",
    "target_delimiter", "metrics", "group_by", "count_text", "max_length", "max_new_tokens", "chat", "better",
}
_DATA_FIELDS = {"files", "format", "label_file", "label_column", "process", "options", "where"}


def _strings(value: Any, name: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return tuple(value)
    raise TaskError(f"{name} must be a string or a list of strings")


def task_from_dict(raw: Mapping[str, Any], source: str | None = None) -> Task:
    """Build and validate a Task from parsed YAML; errors name the offending field."""
    unknown = sorted(set(raw) - _TASK_FIELDS)
    name = str(raw.get("name", "?"))
    if unknown:
        raise TaskError(f"task {name}: unknown field(s) {', '.join(unknown)}")
    data_raw = raw.get("data")
    if isinstance(data_raw, str | list):
        data_raw = {"files": data_raw}
    if not isinstance(data_raw, dict):
        raise TaskError(f"task {name}: `data` must be a mapping with `files`")
    unknown = sorted(set(data_raw) - _DATA_FIELDS)
    if unknown:
        raise TaskError(f"task {name}: unknown data field(s) {', '.join(unknown)}")
    data = DataSpec(
        files=_strings(data_raw.get("files"), "data.files"),
        format=data_raw.get("format"),
        label_file=data_raw.get("label_file"),
        label_column=str(data_raw.get("label_column", "label")),
        process=data_raw.get("process"),
        options=dict(data_raw.get("options") or {}),
        where=data_raw.get("where"),
    )
    choices = raw.get("choices")
    if isinstance(choices, list):
        choices = tuple(str(c) for c in choices)
    elif choices is not None and not isinstance(choices, str):
        raise TaskError(f"task {name}: `choices` must be a string or a list of templates")
    target = raw.get("target")
    if target is not None and not isinstance(target, int | str):
        raise TaskError(f"task {name}: `target` must be an int or a string")
    task = Task(
        name=name,
        type=cast(TaskType, raw.get("type", "multiple_choice")),
        data=data,
        version=str(raw.get("version", "1")),
        description=str(raw.get("description", "")).strip(),
        dataset=raw.get("dataset"),
        text=str(raw.get("text", "")),
        choices=choices,
        target=target,
        labels=raw.get("labels"),
        target_delimiter=str(raw.get("target_delimiter", " ")),
        metrics=_strings(raw.get("metrics"), "metrics"),
        group_by=_strings(raw.get("group_by"), "group_by"),
        count_text=raw.get("count_text"),
        max_length=raw.get("max_length"),
        max_new_tokens=int(raw.get("max_new_tokens", 64)),
        chat=bool(raw.get("chat", True)),
        better={str(k): str(v) for k, v in (raw.get("better") or {}).items()},
        source=source,
    )
    task.validate()
    return task


def load_tasks(path: Path) -> list[Task]:
    """Tasks from a YAML file: one task mapping, or `tasks: [...]` (a dataset repo's commons-task.yaml)."""
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise TaskError(f"{path.name}: not valid YAML: {exc}") from None
    entries = raw["tasks"] if isinstance(raw, dict) and "tasks" in raw else [raw]
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        raise TaskError(f"{path.name}: expected a task mapping or `tasks:` with a list of them")
    return [task_from_dict(e, str(path)) for e in entries]


def builtin_tasks() -> dict[str, Task]:
    """The tasks shipped with Commons (commons/ml/eval/tasks/*.yaml), by name."""
    tasks: dict[str, Task] = {}
    for path in sorted(BUILTIN_DIR.glob("*.yaml")):
        for task in load_tasks(path):
            tasks[task.name] = task
    return tasks


def builtin_task(name: str) -> Task:
    tasks = builtin_tasks()
    if name not in tasks:
        raise TaskError(f"no built-in task {name!r}; known: {', '.join(sorted(tasks))}")
    return tasks[name]
