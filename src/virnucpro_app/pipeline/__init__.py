"""The predict pipeline: stages over shards, every result a ckptkit checkpoint.

``run_predict(config)`` is the entry point (:mod:`.run`). The pieces:
:mod:`.manifest` (what makes results reusable), :mod:`.store` (reusing,
validating and quarantining checkpoints), :mod:`.shards` (prepared frames per
shard), :mod:`.embed_stage`, :mod:`.classify_stage`, :mod:`.outputs`.
"""

from __future__ import annotations
