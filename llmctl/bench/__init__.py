"""`llmctl bench`: a bounded load generator against a running endpoint (run.py, client.py, prompts.py),
its statistics (stats.py), result files (results.py) and the measured-over-predicted chart (chart.py)."""
