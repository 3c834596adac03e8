"""`llmctl up` / `down` / `status`, target-neutral: apply a plan through a target's driver, wait for
it, smoke-test it, remember it. Each target's own driver is llmctl/targets/<name>/apply.py.

base.py      the Driver protocol every target's apply.py implements
state.py     what was applied (`.llmctl/<slug>/state.json` beside the spec)
secrets.py   the env file (mode 0600) built from the user's environment
progress.py  waiting with a deadline and a progress line
proxied.py   colours behind the HAProxy traffic layer (local and compose)
rollout.py   first start, blue/green updates, idempotence, down and status across targets
listing.py   `llmctl ps`: every deployment recorded on this host
logs.py      `llmctl logs`
"""
