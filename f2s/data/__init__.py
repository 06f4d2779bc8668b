"""Input pipeline: numpy preprocessing (`preprocess`) and grain wiring (`pipeline`)."""
