"""Job specs: JSON round trip, validation with messages that name the field."""

from __future__ import annotations

import json

import pytest

from commons.ml.specs import FinetuneSpec, LoraRecipe, RepoInput, SpecError, parse_spec

SHA_A, SHA_B = "a" * 40, "b" * 40


def spec_json(**recipe: object) -> dict[str, object]:
    return {"kind": "finetune", "base": {"repo_id": "alice/m", "revision": SHA_A},
            "dataset": {"repo_id": "alice/d", "revision": SHA_B}, "output_repo": "alice/out", "recipe": recipe}


def test_round_trip_through_json() -> None:
    spec = FinetuneSpec(RepoInput("alice/m", SHA_A), RepoInput("alice/d", SHA_B, "dataset"), "alice/out",
                        LoraRecipe(rank=4, target_modules=("q_proj", "o_proj"), max_steps=5, eval_split="test"))
    again = FinetuneSpec.from_json(json.loads(json.dumps(spec.to_json())))
    assert again == spec
    assert again.to_json()["kind"] == "finetune" and again.to_json()["spec_version"] == 1


def test_defaults_and_comma_separated_targets() -> None:
    spec = parse_spec("finetune", spec_json(target_modules="q_proj, v_proj", learning_rate=1))
    assert spec.recipe.target_modules == ("q_proj", "v_proj")
    assert spec.recipe.rank == 8 and spec.dataset.repo_type == "dataset"


@pytest.mark.parametrize(("recipe", "message"), [
    ({"rank": 0}, "rank must be at least 1"),
    ({"rank": "8"}, "LoraRecipe.rank: expected int"),
    ({"rank": True}, "LoraRecipe.rank: expected int"),
    ({"dropout": 1.5}, "dropout"),
    ({"schedule": "exponential"}, "schedule"),
    ({"prompt_format": "xml"}, "prompt_format"),
    ({"learning_rte": 1e-4}, "unknown field(s) learning_rte"),
    ({"max_steps": 0}, "max_steps"),
])
def test_bad_recipes_are_refused_by_name(recipe: dict[str, object], message: str) -> None:
    with pytest.raises(SpecError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_spec("finetune", spec_json(**recipe))


def test_inputs_must_be_pinned_to_commits() -> None:
    data = spec_json()
    data["base"] = {"repo_id": "alice/m", "revision": "main"}
    with pytest.raises(SpecError, match="not a commit sha"):
        parse_spec("finetune", data)


def test_unknown_kind_and_version() -> None:
    with pytest.raises(SpecError, match="unknown job kind"):
        parse_spec("no-such-kind", spec_json())
    with pytest.raises(SpecError, match="spec_version 2"):
        parse_spec("finetune", {**spec_json(), "spec_version": 2})


def test_columns_follow_the_prompt_format() -> None:
    assert LoraRecipe().columns == ("text",)
    assert LoraRecipe(prompt_format="chat", instruction_column="q", response_column="a").columns == ("q", "a")
