"""llmctl: plan, render, deploy and verify self-hosted LLM serving."""

__version__ = "0.1.0"
