"""The Hugging Face Hub HTTP API, one module per resource. See docs/hf-api.md."""
