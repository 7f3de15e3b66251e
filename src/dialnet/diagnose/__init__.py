"""Understanding a network: the trace of one pass (inspect), the doctor and its probes, plots.

Imports everything below it; nothing below imports it.
"""
