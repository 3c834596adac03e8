"""The migration from Ollama to vLLM: parity, state, the gated shift, end to end."""
