"""Job specs: the contract between the job system and the child process that runs a job.

A spec is a plain, versioned dataclass that round-trips through JSON. It names every input by
repo id and **commit sha**, and carries every knob of the recipe, so a spec alone is a complete,
replayable record of what a job did. Nothing here imports torch (or anything from Commons): the
server validates specs with this module, the child process runs them.

The child (`python -m commons.ml.run spec.json workdir`) expects each input materialised by the
caller under `workdir/inputs/<name>/` (`base`, `dataset` for a fine-tune) and writes its outputs
to `workdir/output/` and a summary to `workdir/result.json`.
"""

from __future__ import annotations

import importlib.util
import re
from dataclasses import asdict, dataclass, field, fields
from typing import Any, ClassVar, Literal, Protocol

SPEC_VERSION = 1
_SHA = re.compile(r"^[0-9a-f]{40}$")
_REPO_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*$")

Schedule = Literal["constant", "linear", "cosine"]
PromptFormat = Literal["plain", "chat"]


class SpecError(ValueError):
    """A spec that cannot run: unknown field, wrong type, value out of range, unpinned input."""


@dataclass(frozen=True)
class RepoInput:
    """One input repository, pinned to a commit."""

    repo_id: str
    """`namespace/name`."""
    revision: str
    """A 40-hex commit sha. Branch names are resolved to a sha when a job is submitted."""
    repo_type: str = "model"
    """`model` or `dataset`."""

    def validate(self, pinned: bool = True) -> None:
        if not _REPO_ID.match(self.repo_id):
            raise SpecError(f"invalid repo id {self.repo_id!r}: expected 'namespace/name'")
        if self.repo_type not in ("model", "dataset"):
            raise SpecError(f"invalid repo type {self.repo_type!r}: expected 'model' or 'dataset'")
        if pinned and not _SHA.match(self.revision):
            raise SpecError(f"{self.repo_id}: revision {self.revision!r} is not a commit sha")

    @property
    def label(self) -> str:
        return f"{self.repo_id}@{self.revision[:12]}"


@dataclass(frozen=True)
class LoraRecipe:
    """How to fine-tune: LoRA shape, optimiser, schedule, data formatting. Defaults suit a ~100 M model."""

    rank: int = 8
    """LoRA rank r: each adapted weight W (d_out x d_in) learns B (d_out x r) @ A (r x d_in)."""
    alpha: int = 16
    """Scale of the update: W + (alpha / r) * B @ A."""
    dropout: float = 0.05
    """Dropout on the LoRA branch's input."""
    target_modules: tuple[str, ...] = ("q_proj", "v_proj")
    """Names of the linear layers that get an adapter (matched on the last name component)."""
    learning_rate: float = 2e-4
    """Peak learning rate of AdamW."""
    schedule: Schedule = "cosine"
    """Learning-rate schedule after warm-up: constant, linear decay to 0, or cosine decay to 0."""
    warmup_steps: int = 0
    """Optimiser steps of linear warm-up from 0 to the peak rate."""
    weight_decay: float = 0.0
    """AdamW weight decay on the LoRA weights."""
    max_grad_norm: float = 1.0
    """Gradients are clipped to this global norm (0 disables clipping)."""
    epochs: float = 1.0
    """Passes over the training split; ignored when `max_steps` is set."""
    max_steps: int | None = None
    """Optimiser steps to run; overrides `epochs`."""
    batch_size: int = 4
    """Examples per micro-batch."""
    grad_accumulation: int = 1
    """Micro-batches per optimiser step (effective batch = batch_size x grad_accumulation)."""
    max_seq_len: int = 256
    """Examples are truncated to this many tokens."""
    seed: int = 0
    """Seeds shuffling, dropout and the LoRA initialisation; with the same versions on CPU, runs are bit-identical."""
    prompt_format: PromptFormat = "plain"
    """`plain`: train on `text_column`. `chat`: user turn from `instruction_column`, assistant turn from
    `response_column`, loss on the response only (the tokenizer's chat template, or a fixed fallback)."""
    text_column: str = "text"
    instruction_column: str = "instruction"
    response_column: str = "response"
    train_split: str = "train"
    eval_split: str | None = None
    """A split to report loss on before and after training (none: only the training-data loss)."""
    max_eval_examples: int = 128
    """Loss before/after is measured on at most this many examples of each split."""
    merge: bool = False
    """Also publish the merged model (base weights + update) at the repo root; the adapter goes to `adapter/`."""
    device: Literal["auto", "cpu", "cuda"] = "auto"
    """`auto`: CUDA when present, else CPU."""
    num_threads: int | None = None
    """CPU threads for torch (None: torch's default). Recorded in provenance: it can change float sums."""

    def validate(self) -> None:
        checks: list[tuple[bool, str]] = [
            (self.rank >= 1, "rank must be at least 1"),
            (self.alpha > 0, "alpha must be positive"),
            (0 <= self.dropout < 1, "dropout must be in [0, 1)"),
            (len(self.target_modules) > 0, "target_modules must name at least one module"),
            (self.learning_rate > 0, "learning_rate must be positive"),
            (self.schedule in ("constant", "linear", "cosine"), "schedule must be constant, linear or cosine"),
            (self.warmup_steps >= 0, "warmup_steps must be >= 0"),
            (self.weight_decay >= 0, "weight_decay must be >= 0"),
            (self.max_grad_norm >= 0, "max_grad_norm must be >= 0"),
            (self.epochs > 0, "epochs must be positive"),
            (self.max_steps is None or self.max_steps >= 1, "max_steps must be at least 1"),
            (self.batch_size >= 1, "batch_size must be at least 1"),
            (self.grad_accumulation >= 1, "grad_accumulation must be at least 1"),
            (self.max_seq_len >= 2, "max_seq_len must be at least 2"),
            (self.prompt_format in ("plain", "chat"), "prompt_format must be plain or chat"),
            (self.max_eval_examples >= 1, "max_eval_examples must be at least 1"),
            (self.device in ("auto", "cpu", "cuda"), "device must be auto, cpu or cuda"),
            (self.num_threads is None or self.num_threads >= 1, "num_threads must be at least 1"),
        ]
        for ok, message in checks:
            if not ok:
                raise SpecError(f"recipe: {message}")

    @property
    def columns(self) -> tuple[str, ...]:
        """The dataset columns this recipe reads."""
        if self.prompt_format == "plain":
            return (self.text_column,)
        return (self.instruction_column, self.response_column)


@dataclass(frozen=True)
class FinetuneSpec:
    """LoRA fine-tune of `base` on `dataset`, published as a new model repo `output_repo`."""

    kind: ClassVar[str] = "finetune"
    INPUTS: ClassVar[dict[str, str]] = {"base": "model", "dataset": "dataset"}
    """Input fields and their repo types; `inputs()` returns them by the same names."""
    base: RepoInput
    dataset: RepoInput
    output_repo: str | None
    """The model repo to create. None: train and report only (used by `commons jobs reproduce`)."""
    recipe: LoraRecipe = field(default_factory=LoraRecipe)
    private: bool = False
    """Create the output repo private."""
    spec_version: int = SPEC_VERSION

    def inputs(self) -> dict[str, RepoInput]:
        """Each input by the directory name the child reads it from (`workdir/inputs/<name>`)."""
        return {"base": self.base, "dataset": self.dataset}

    def summary(self) -> str:
        return f"LoRA fine-tune of {self.base.repo_id} on {self.dataset.repo_id}"

    def validate(self, pinned: bool = True) -> None:
        _check_version(self.spec_version)
        self.base.validate(pinned)
        self.dataset.validate(pinned)
        if self.base.repo_type != "model":
            raise SpecError("base must be a model repo")
        if self.dataset.repo_type != "dataset":
            raise SpecError("dataset must be a dataset repo")
        _check_output(self.output_repo)
        self.recipe.validate()

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["recipe"]["target_modules"] = list(self.recipe.target_modules)
        return {"kind": self.kind, **data}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> FinetuneSpec:
        """Build and validate a spec from JSON; errors name the offending field."""
        data = _without_kind(cls, data)
        try:
            base = _build(RepoInput, {"repo_type": "model", **_mapping(data.pop("base", None), "base")})
            dataset = _build(RepoInput, {"repo_type": "dataset", **_mapping(data.pop("dataset", None), "dataset")})
            recipe_data = dict(_mapping(data.pop("recipe", {}) or {}, "recipe"))
            _name_list(recipe_data, "target_modules", "LoraRecipe")
            recipe = _build(LoraRecipe, recipe_data)
            spec: FinetuneSpec = _build(cls, {**data, "base": base, "dataset": dataset, "recipe": recipe})
        except TypeError as exc:
            raise SpecError(str(exc)) from None
        spec.validate()
        return spec


_TASK_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
MAX_EVAL_TASKS = 32


@dataclass(frozen=True)
class EvalTask:
    """One task of an evaluation and the dataset repo its data come from."""

    name: str
    """A task the dataset repo's `commons-task.yaml` defines, else a built-in task (hellaswag, piqa, ...)."""
    dataset: RepoInput


@dataclass(frozen=True)
class EvalSettings:
    """How to evaluate (the harness's `RunSettings.scoring_key()` says which fields can change a score)."""

    limit: int | None = None
    """At most this many rows per task (None: all of them)."""
    sample: Literal["first", "spread"] = "first"
    """Which rows when limited: the first ones (lm-eval's --limit) or evenly spread over the data."""
    num_fewshot: int = 0
    """Examples put before each question. The harness scores zero-shot only, so this must be 0 for now."""
    batch_size: int = 16
    """Prompts per generation batch (safety tasks)."""
    batch_tokens: int = 2048
    """Tokens per forward pass when scoring log-likelihoods."""
    max_new_tokens: int | None = None
    """Override the generation tasks' reply length."""
    seed: int = 0
    """Seeds the bootstrap of confidence intervals (and anything else random)."""
    bootstrap_iters: int = 1000
    """Resamples for the intervals of metrics that are not plain means."""
    dtype: Literal["float32", "bfloat16", "float16"] = "float32"
    device: Literal["auto", "cpu", "cuda"] = "auto"
    num_threads: int | None = None

    def validate(self) -> None:
        checks: list[tuple[bool, str]] = [
            (self.limit is None or self.limit >= 1, "limit must be at least 1"),
            (self.sample in ("first", "spread"), "sample must be first or spread"),
            (self.num_fewshot == 0, "num_fewshot: the harness scores zero-shot only; use 0"),
            (self.batch_size >= 1, "batch_size must be at least 1"),
            (self.batch_tokens >= 16, "batch_tokens must be at least 16"),
            (self.max_new_tokens is None or 1 <= self.max_new_tokens <= 4096, "max_new_tokens must be 1..4096"),
            (self.seed >= 0, "seed must be >= 0"),
            (0 <= self.bootstrap_iters <= 100_000, "bootstrap_iters must be 0..100000"),
            (self.dtype in ("float32", "bfloat16", "float16"), "dtype must be float32, bfloat16 or float16"),
            (self.device in ("auto", "cpu", "cuda"), "device must be auto, cpu or cuda"),
            (self.num_threads is None or self.num_threads >= 1, "num_threads must be at least 1"),
        ]
        for ok, message in checks:
            if not ok:
                raise SpecError(f"settings: {message}")


@dataclass(frozen=True)
class EvalSpec:
    """Evaluate `model` on `tasks`; the results go back to the model repo (a commit, or a pull request)."""

    kind: ClassVar[str] = "eval"
    INPUTS: ClassVar[dict[str, str]] = {"model": "model"}
    """Pinned by `submit`; the task datasets are pinned by `commons.evals.submit` (their number varies)."""
    model: RepoInput
    tasks: tuple[EvalTask, ...]
    settings: EvalSettings = field(default_factory=EvalSettings)
    spec_version: int = SPEC_VERSION

    @property
    def output_repo(self) -> str:
        """The evaluated model itself: the `eval` publisher writes the results back to it."""
        return self.model.repo_id

    @property
    def private(self) -> bool:
        return False

    def data_inputs(self) -> dict[tuple[str, str], str]:
        """Each distinct dataset (repo id, revision) by its input directory name: `data-0`, `data-1`, ..."""
        names: dict[tuple[str, str], str] = {}
        for task in self.tasks:
            key = (task.dataset.repo_id, task.dataset.revision)
            names.setdefault(key, f"data-{len(names)}")
        return names

    def data_dir_name(self, task: EvalTask) -> str:
        return self.data_inputs()[(task.dataset.repo_id, task.dataset.revision)]

    def inputs(self) -> dict[str, RepoInput]:
        by_key = {(t.dataset.repo_id, t.dataset.revision): t.dataset for t in self.tasks}
        return {"model": self.model, **{name: by_key[key] for key, name in self.data_inputs().items()}}

    def summary(self) -> str:
        return f"Evaluate {self.model.repo_id} on {', '.join(t.name for t in self.tasks)}"

    def validate(self, pinned: bool = True) -> None:
        _check_version(self.spec_version)
        self.model.validate(pinned)
        if self.model.repo_type != "model":
            raise SpecError("model must be a model repo")
        if not self.tasks:
            raise SpecError("tasks: name at least one task")
        if len(self.tasks) > MAX_EVAL_TASKS:
            raise SpecError(f"tasks: at most {MAX_EVAL_TASKS} per job")
        seen: set[str] = set()
        for task in self.tasks:
            if not _TASK_NAME.match(task.name):
                raise SpecError(f"tasks: invalid task name {task.name!r}")
            if task.name in seen:
                raise SpecError(f"tasks: {task.name} is named twice")
            seen.add(task.name)
            task.dataset.validate(pinned)
            if task.dataset.repo_type != "dataset":
                raise SpecError(f"tasks: {task.name} must read a dataset repo")
        self.settings.validate()

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, **asdict(self), "tasks": [asdict(t) for t in self.tasks]}

    @classmethod
    def from_json(cls, data: dict[str, Any], pinned: bool = True) -> EvalSpec:
        """Build and validate a spec from JSON; errors name the offending field."""
        data = _without_kind(cls, data)
        raw_tasks = data.pop("tasks", None)
        if not isinstance(raw_tasks, list):
            raise SpecError("tasks must be a list of {name, dataset}")
        try:
            model = _build(RepoInput, {"repo_type": "model", **_mapping(data.pop("model", None), "model")})
            tasks = []
            for raw in raw_tasks:
                raw = dict(_mapping(raw, "tasks[]"))
                dataset = _build(RepoInput, {"repo_type": "dataset", **_mapping(raw.pop("dataset", None),
                                                                                 "tasks[].dataset")})
                tasks.append(_build(EvalTask, {**raw, "dataset": dataset}))
            settings = _build(EvalSettings, dict(_mapping(data.pop("settings", {}) or {}, "settings")))
            spec: EvalSpec = _build(cls, {**data, "model": model, "tasks": tuple(tasks), "settings": settings})
        except TypeError as exc:
            raise SpecError(str(exc)) from None
        spec.validate(pinned)
        return spec


QUANT_VARIANTS = ("F16", "Q8_0", "Q4_0", "int8", "int4")
"""GGUF files (F16, Q8_0, Q4_0) for llama.cpp/Ollama, and torchao weight-only checkpoints (int8, int4)
that `from_pretrained` loads from a subfolder."""
QUANT_K_VARIANTS = ("Q4_K_M", "Q5_K_M", "Q6_K")
"""GGUF K-quants, written by llama.cpp's own quantizer: only where llama-cpp-python is installed (not a default)."""


@dataclass(frozen=True)
class QuantizeRecipe:
    """Which variants to write and how to measure them."""

    variants: tuple[str, ...] = QUANT_VARIANTS
    """Any of F16, Q8_0, Q4_0 (GGUF), Q4_K_M, Q5_K_M, Q6_K (GGUF by llama.cpp's quantizer) and int8, int4
    (torchao, transformers-loadable)."""
    group_size: int | None = None
    """Weights per scale for int8/int4 (None: int8 takes the largest of 128, 64, 32 that divides every linear
    input, int4 takes 32, the block size of Q4_0)."""
    eval_tokens: int = 4096
    """Held-out tokens scored for perplexity and next-token agreement (Python's reference docs, in the stdlib)."""
    eval_window: int = 512
    """Tokens per scoring window (non-overlapping; capped by the model's context)."""
    decode_tokens: int = 32
    """New tokens generated (greedy, batch 1) to measure decode tokens/s."""
    num_threads: int | None = None
    """CPU threads for torch (None: torch's default)."""

    def validate(self) -> None:
        known = QUANT_VARIANTS + QUANT_K_VARIANTS
        unknown = [v for v in self.variants if v not in known]
        k_quants = [v for v in self.variants if v in QUANT_K_VARIANTS]
        checks: list[tuple[bool, str]] = [
            (len(self.variants) > 0, "variants must name at least one variant"),
            (not unknown, f"unknown variant(s) {', '.join(unknown)}; known: {', '.join(known)}"),
            # Found, not imported: the server validates specs and loads no native library.
            (not k_quants or importlib.util.find_spec("llama_cpp") is not None,
             f"{', '.join(k_quants)} need llama.cpp's quantizer, and the llama-cpp-python package is not installed "
             "here (pip install llama-cpp-python)"),
            (len(set(self.variants)) == len(self.variants), "variants must not repeat"),
            (self.group_size is None or self.group_size in (32, 64, 128, 256), "group_size must be 32, 64, 128 or 256"),
            (self.eval_tokens >= 16, "eval_tokens must be at least 16"),
            (self.eval_window >= 8, "eval_window must be at least 8"),
            (self.decode_tokens >= 1, "decode_tokens must be at least 1"),
            (self.num_threads is None or self.num_threads >= 1, "num_threads must be at least 1"),
        ]
        for ok, message in checks:
            if not ok:
                raise SpecError(f"recipe: {message}")


@dataclass(frozen=True)
class QuantizeSpec:
    """Quantized variants of `base` (GGUF and torchao), published with a quality report as `output_repo`."""

    kind: ClassVar[str] = "quantize"
    INPUTS: ClassVar[dict[str, str]] = {"base": "model"}
    base: RepoInput
    output_repo: str | None
    recipe: QuantizeRecipe = field(default_factory=QuantizeRecipe)
    private: bool = False
    spec_version: int = SPEC_VERSION

    def inputs(self) -> dict[str, RepoInput]:
        return {"base": self.base}

    def summary(self) -> str:
        return f"Quantize {self.base.repo_id} to {', '.join(self.recipe.variants)}"

    def validate(self, pinned: bool = True) -> None:
        _check_version(self.spec_version)
        self.base.validate(pinned)
        if self.base.repo_type != "model":
            raise SpecError("base must be a model repo")
        _check_output(self.output_repo)
        self.recipe.validate()

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["recipe"]["variants"] = list(self.recipe.variants)
        return {"kind": self.kind, **data}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> QuantizeSpec:
        data = _without_kind(cls, data)
        try:
            base = _build(RepoInput, {"repo_type": "model", **_mapping(data.pop("base", None), "base")})
            recipe_data = dict(_mapping(data.pop("recipe", {}) or {}, "recipe"))
            _name_list(recipe_data, "variants", "QuantizeRecipe")
            recipe = _build(QuantizeRecipe, recipe_data)
            spec: QuantizeSpec = _build(cls, {**data, "base": base, "recipe": recipe})
        except TypeError as exc:
            raise SpecError(str(exc)) from None
        spec.validate()
        return spec


class JobSpec(Protocol):
    """What the job system needs of every kind's spec (FinetuneSpec is the model to follow)."""

    kind: ClassVar[str]
    INPUTS: ClassVar[dict[str, str]]
    """Input field names and their default repo types; `submit` pins each to a commit sha."""

    @property
    def output_repo(self) -> str | None:
        """The repo the outputs go to (a new repo unless the kind's publisher says otherwise)."""

    @property
    def private(self) -> bool: ...

    @property
    def spec_version(self) -> int: ...

    def inputs(self) -> dict[str, RepoInput]: ...

    def summary(self) -> str:
        """One line for the output commit's title, e.g. "LoRA fine-tune of a/b on c/d"."""

    def to_json(self) -> dict[str, Any]: ...


# Every job kind's spec type. `from_json` builds and validates one (raises SpecError).
KINDS: dict[str, Any] = {FinetuneSpec.kind: FinetuneSpec, EvalSpec.kind: EvalSpec,
                         QuantizeSpec.kind: QuantizeSpec}


def parse_spec(kind: str, data: dict[str, Any]) -> JobSpec:
    """The spec of a job of `kind`, validated. Raises SpecError."""
    spec_type = KINDS.get(kind)
    if spec_type is None:
        raise SpecError(f"unknown job kind {kind!r}; known: {', '.join(sorted(KINDS))}")
    spec: JobSpec = spec_type.from_json({**data, "kind": kind})
    return spec


def _check_version(spec_version: int) -> None:
    if spec_version != SPEC_VERSION:
        raise SpecError(f"spec_version {spec_version} is not supported (this Commons reads {SPEC_VERSION})")


def _check_output(output_repo: str | None) -> None:
    if output_repo is not None and not _REPO_ID.match(output_repo):
        raise SpecError(f"invalid output repo id {output_repo!r}")


def _without_kind(cls: type[Any], data: dict[str, Any]) -> dict[str, Any]:
    """A copy of `data` without its `kind`, which must be `cls.kind` (or absent)."""
    data = dict(data)
    kind = data.pop("kind", cls.kind)
    if kind != cls.kind:
        article = "an" if cls.kind[0] in "aeiou" else "a"
        raise SpecError(f"not {article} {cls.kind} spec: kind {kind!r}")
    return data


def _name_list(values: dict[str, Any], key: str, owner: str) -> None:
    """`values[key]` as a tuple of names: a list, or a comma-separated string as CLIs give it."""
    if key not in values:
        return
    given = values[key]
    if isinstance(given, str):
        given = [v.strip() for v in given.split(",") if v.strip()]
    if not isinstance(given, list | tuple):
        raise SpecError(f"{owner}.{key}: expected a list or a comma-separated string")
    values[key] = tuple(str(v) for v in given)


def _mapping(value: Any, name: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise SpecError(f"{name} must be an object, got {type(value).__name__}")
    return value


# Scalar field types we check by hand (dataclass annotations are strings under postponed evaluation).
_TYPES: dict[str, tuple[type, ...]] = {
    "int": (int,), "float": (int, float), "bool": (bool,), "str": (str,),
    "int | None": (int, type(None)), "str | None": (str, type(None)),
}


def _build(cls: type[Any], values: dict[str, Any]) -> Any:
    known = {f.name: f for f in fields(cls)}
    unknown = sorted(set(values) - set(known))
    if unknown:
        raise SpecError(f"{cls.__name__}: unknown field(s) {', '.join(unknown)}")
    for name, value in values.items():
        expected = _TYPES.get(str(known[name].type))
        wrong_bool = isinstance(value, bool) and expected is not None and bool not in expected
        if expected is not None and (not isinstance(value, expected) or wrong_bool):
            raise SpecError(f"{cls.__name__}.{name}: expected {known[name].type}, got {value!r}")
    return cls(**values)
