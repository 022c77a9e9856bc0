"""The imperative shell around the pure reconcilers: read facts, execute decisions, write status."""
