"""The predict job: one run folder from FASTA to verdicts, on one or many processes.

:mod:`.launch` turns a :class:`.launch.PredictRequest` into a resolved run (models,
device, manifest) and starts it, under torchrun when asked; :mod:`.run` is the
job itself (settle the folder, plan the shards, run them through the stage
library, write the outputs); :mod:`.distributed` is the process group.
"""

from __future__ import annotations
