"""Round trips through transformers and datasets with nothing but HF_ENDPOINT pointing at Commons."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from tests.conftest import POLICY
from tests.hubserver import HubServer

torch = pytest.importorskip("torch")


def _tiny_tokenizer(folder: Path) -> None:
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {"[UNK]": 0, "[PAD]": 1, "<s>": 2, "</s>": 3}
    for word in ["hello", "world", "the", "a", "model", "open", "weights", "hub", "commons"]:
        vocab[word] = len(vocab)
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="[UNK]", pad_token="[PAD]", bos_token="<s>",
                                   eos_token="</s>")
    fast.save_pretrained(folder)


def test_tiny_llama_round_trip(hub: HubServer, repo_name: str, tmp_path: Path) -> None:
    """upload_folder → AutoModelForCausalLM.from_pretrained via HF_ENDPOINT → bit-identical logits."""
    from transformers import AutoModelForCausalLM, AutoTokenizer, LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=64, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64)
    model = LlamaForCausalLM(config).eval()
    folder = tmp_path / "tiny"
    model.save_pretrained(folder, safe_serialization=True)
    _tiny_tokenizer(folder)
    (folder / "README.md").write_text("---\nlicense: apache-2.0\nlibrary_name: transformers\n"
                                      "pipeline_tag: text-generation\n---\n# Tiny Llama\n")
    rid = f"alice/{repo_name}"
    api = hub.api()
    api.create_repo(rid)
    api.upload_folder(folder_path=folder, repo_id=rid)

    loaded = AutoModelForCausalLM.from_pretrained(rid, token=hub.alice_token).eval()
    tokenizer = AutoTokenizer.from_pretrained(rid, token=hub.alice_token)
    ids = tokenizer("hello world the model", return_tensors="pt").input_ids
    assert ids.tolist() == [[4, 5, 6, 8]]
    with torch.no_grad():
        assert torch.equal(model(ids).logits, loaded(ids).logits)
    info = api.model_info(rid)
    assert info.library_name == "transformers" and info.pipeline_tag == "text-generation"


def test_push_to_hub_and_reload(hub: HubServer, repo_name: str) -> None:
    from transformers import AutoModel, BertConfig, BertModel

    torch.manual_seed(1)
    model = BertModel(BertConfig(vocab_size=50, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                                 intermediate_size=32)).eval()
    model.push_to_hub(f"alice/{repo_name}", token=hub.alice_token)
    again = AutoModel.from_pretrained(f"alice/{repo_name}", token=hub.alice_token).eval()
    ids = torch.tensor([[1, 2, 3]])
    with torch.no_grad():
        assert torch.equal(model(ids).last_hidden_state, again(ids).last_hidden_state)


@pytest.mark.parametrize("fmt", ["csv", "jsonl", "parquet"])
def test_load_dataset_formats(hub: HubServer, repo_name: str, fmt: str) -> None:
    import datasets
    import pandas as pd

    rows = {"text": ["open", "weights", "hub"], "label": [0, 1, 0]}
    frame = pd.DataFrame(rows)
    buf = io.BytesIO()
    if fmt == "csv":
        frame.to_csv(buf, index=False)
    elif fmt == "jsonl":
        buf.write("".join(json.dumps(r) + "\n" for r in frame.to_dict("records")).encode())
    else:
        frame.to_parquet(buf, index=False)
    rid = f"alice/{repo_name}"
    api = hub.api()
    api.create_repo(rid, repo_type="dataset")
    api.upload_file(path_or_fileobj=buf.getvalue(), path_in_repo=f"data/train.{fmt}", repo_id=rid,
                    repo_type="dataset")
    ds = datasets.load_dataset(rid, split="train", token=hub.alice_token)
    assert ds["text"] == rows["text"] and ds["label"] == rows["label"]
    streamed = datasets.load_dataset(rid, split="train", streaming=True, token=hub.alice_token)
    assert [r["text"] for r in streamed] == rows["text"]


@pytest.mark.skipif(POLICY != "lfs", reason="push_to_hub needs policy B")
def test_dataset_dict_push_to_hub(hub: HubServer, repo_name: str) -> None:
    import datasets

    dd = datasets.DatasetDict({
        "train": datasets.Dataset.from_dict({"q": ["a", "b"], "n": [1, 2]}),
        "test": datasets.Dataset.from_dict({"q": ["c"], "n": [3]}),
    })
    dd.push_to_hub(f"alice/{repo_name}", token=hub.alice_token)
    back = datasets.load_dataset(f"alice/{repo_name}", token=hub.alice_token)
    assert back["train"]["n"] == [1, 2] and back["test"]["q"] == ["c"]
