"""``virnucpro-app train``: VirNucPro's MLP trained on labelled FASTA, resumably.

Modules, in the order a run uses them: :mod:`.recipe` (hyper-parameters,
the original's as defaults), :mod:`.features` (merged embeddings per class
through the checkpointed stages of :mod:`virnucpro_app.stages`, the ones predict
runs), :mod:`.data` (labels, split, data order), :mod:`.loop` (epochs, early
stopping, a ckptkit.CheckpointManager step per epoch), :mod:`.metrics`,
:mod:`.epoch_report`, :mod:`.run` (the whole job) and :mod:`.launch` (a command
line's request to a run). docs/app/training.md is the guide. This module
imports nothing heavy.
"""
