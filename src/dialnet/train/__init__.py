"""Training: optimizers and schedules, callbacks, metrics, the fit loop and its divergence guard.

Imports core, data and files (checkpoints are written from the loop).
"""
