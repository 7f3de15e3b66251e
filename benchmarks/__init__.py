"""Side-by-side benchmarks: dialnet against PyTorch (CPU, eager) and scikit-learn.

``python -m benchmarks`` runs everything for the README table (minutes);
``python -m benchmarks --quick`` runs the same code on tiny sizes (seconds,
for CI). Every tool does the same work on the same float32 data in one
process, repeats are interleaved so that a busy machine slows all of them
alike, and the table reports medians and dialnet's ratio to each peer,
never a lone absolute time.

Modules: :mod:`.cases` (what is timed), :mod:`.tools` (the same work written
for each library), :mod:`.timing` (warm-up, interleaved repeats, medians),
:mod:`.memory` (peak RSS, one process per tool), :mod:`.startup`
(``dialnet --help`` and ``import dialnet``), :mod:`.accuracy`
(time to 96% test accuracy on mnist-10k) and :mod:`.run` (the command).
"""
