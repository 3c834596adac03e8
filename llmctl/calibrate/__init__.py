"""`llmctl calibrate`: measurements of one setup (bench results, vLLM start-up logs, /metrics) fitted
into the planner's constants (fit.py, sources.py, run.py), kept as an overlay with provenance
(overlay.py) that later plans of the same setup apply (apply.py, active.py)."""
