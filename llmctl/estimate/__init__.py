"""Estimators: weights, KV cache, engine memory (vLLM, llama.cpp/Ollama) and performance."""
