"""Training and evaluation: the interaction model, the ranker, the harness."""
