"""JSON over HTTP: the Hugging Face-compatible surface (`hf/`) and git smart HTTP."""
