"""The on-disk format and its I/O (private): what a file is, how it is written and read.

``format`` (names, constants, timestamps: the contract of docs/ckptkit/format.md),
``versions``, ``digest`` (xxh3 checksums), ``codec`` (state <-> MessagePack skeleton and
tensors), ``header`` (parse and check a header), ``tensors`` (read tensor bytes),
``reader`` (whole files, legacy ones included), ``writer``, ``atomic`` (atomic
replace, temporary files), ``discovery`` (classify files in folders),
``torch_pickle`` (a legacy pickle's storage declarations, read without running
it) and ``bounded`` (reads that never go past a file's end).
Nothing here imports the layers above (migrations, manager, validation, CLI).
"""
