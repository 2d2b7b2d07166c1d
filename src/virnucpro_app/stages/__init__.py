"""The stage library: the resumable, checkpointed steps ``predict`` and ``train`` share.

A run folder (:class:`virnucpro_app.layout.RunLayout`) is worked through in
stages, every result a ckptkit checkpoint that a resumed run validates and
reuses: :mod:`.manifest` (what makes results reusable, settled once per folder),
:mod:`.store` (reusing, validating and quarantining checkpoints), :mod:`.prepare`
(records -> chunks -> frames in shards, :mod:`.shards`), :mod:`.embed` (DNABERT-S
and ESM-2 per shard), :mod:`.classify` (merged features -> scores), and
:mod:`.runner`, the one loop that runs a shard's stages for either job.
:mod:`.outputs` writes a finished run's files. The jobs themselves live in
:mod:`virnucpro_app.predict` and :mod:`virnucpro_app.training`.
"""

from __future__ import annotations
