"""Click sub-commands, one module per family, imported only when run."""
