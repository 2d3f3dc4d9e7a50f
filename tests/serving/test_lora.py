"""A LoRA adapter repo is served on its base (named in adapter_config.json by repo id and commit)."""

from __future__ import annotations

import pytest

from tests.serving.conftest import ModelServer, ServingHub

openai = pytest.importorskip("openai")

ASK = [{"role": "user", "content": "red green blue"}]


def local_reply(serving_hub: ServingHub, adapter: bool) -> str:
    """The greedy reply computed here with transformers (+ peft), as the served one must be."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(serving_hub.root / "tiny")
    model = AutoModelForCausalLM.from_pretrained(serving_hub.root / "tiny")
    if adapter:
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, serving_hub.root / "adapter").merge_and_unload()
    text = tok.apply_chat_template(ASK, add_generation_prompt=True, tokenize=False)
    ids = torch.tensor([tok(text, add_special_tokens=False)["input_ids"]])
    out = model.generate(ids, max_new_tokens=8, do_sample=False, pad_token_id=1)
    return str(tok.decode(out[0][ids.shape[1]:], skip_special_tokens=True))


def test_adapter_served_on_its_base(serving_hub: ServingHub) -> None:
    server = ModelServer(serving_hub.home, "alice/tiny-chat-lora", ("--engine", "transformers")).start()
    try:
        api = openai.OpenAI(base_url=f"{server.url}/v1", api_key=serving_hub.tokens["alice"], max_retries=0)
        assert [m.id for m in api.models.list().data] == ["alice/tiny-chat-lora"]
        reply = api.chat.completions.create(model="alice/tiny-chat-lora", messages=ASK, max_tokens=8, temperature=0)
        served = reply.choices[0].message.content
    finally:
        server.stop()
    assert "adapter on alice/tiny-chat@" + serving_hub.commits["alice/tiny-chat"] in server.log()
    assert served == local_reply(serving_hub, adapter=True)
    assert served != local_reply(serving_hub, adapter=False)  # the adapter changes what the model says
