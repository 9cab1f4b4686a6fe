"""What the CLI runs: agent training runs and the quick start, wired from configs and records."""
