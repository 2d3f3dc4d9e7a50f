"""Text in and out of an engine through its Hugging Face tokenizer: the part every engine shares."""

from __future__ import annotations

from typing import Any


class HfTokenizerText:
    """`encode`, `chat_prompt` and `decode` of the Engine protocol, for engines with `self.tokenizer`."""

    tokenizer: Any

    def encode(self, text: str) -> list[int]:
        return list(self.tokenizer(text)["input_ids"])

    def chat_prompt(self, messages: list[dict[str, Any]]) -> list[int]:
        if not self.tokenizer.chat_template:
            raise ValueError("this model has no chat template: use /v1/completions")
        text = self.tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        # The template already wrote the special tokens it wants.
        return list(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def decode(self, ids: list[int]) -> str:
        return str(self.tokenizer.decode(ids, skip_special_tokens=True))
