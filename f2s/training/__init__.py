"""Training: train state, data-parallel step, losses, evaluation, checkpoints."""
