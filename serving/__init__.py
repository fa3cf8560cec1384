"""The read path: from a request to a ranked, policy-checked list (no HTTP here)."""
