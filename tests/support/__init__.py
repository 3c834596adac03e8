"""Helpers for tests that use real parts: free ports, polling, a private Docker engine, tiny models
built at test time, and real llama.cpp / vLLM servers on 127.0.0.1."""
