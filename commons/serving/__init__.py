"""Serving models through an OpenAI-compatible API.

`engine` defines what an inference engine must do; `batcher` turns concurrent requests into batches
for it; `transformers_engine`, `onnx_engine` and `vllm_engine` are the engines (each a maintained
project doing the decoding); `openai_api` is the HTTP surface; `access` checks the hub's tokens;
`registry` lists the model servers that run, for the hub's playground. Only `registry` and
`access` are imported by the hub process: nothing here imports torch at module level.
"""
