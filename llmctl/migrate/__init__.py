"""`llmctl migrate`: move a service from Ollama to vLLM (and back) with every setting accounted for.

The dry run (llmctl.migrate.run_plan) reads the Ollama side without changing it (sources, inventory),
maps each tag to a Hugging Face repository (mapping), decides what each setting becomes (decide),
plans and renders the vLLM side with the normal planner and engine plug-in, and writes the migration
folder: inventory.json, mapping.yaml, decisions.json, report.md, vllm.yaml, plan.json, deploy/ and,
when Ollama's native API is kept, front.json. `vllm-to-ollama` (reverse) goes the other way.
"""
