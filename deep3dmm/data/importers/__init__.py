"""Importers: one per source layout, each writing the prepared-dataset format.

Every importer has the signature
``import_<source>(src, out_dir, *, skip_bad=False, workers=None, **options) -> PreparedDataset``.
"""

from __future__ import annotations

import os

from deep3dmm.data.importers.coma import import_coma
from deep3dmm.data.importers.dfaust import import_dfaust
from deep3dmm.data.importers.folder import import_folder
from deep3dmm.data.importers.ict import import_ict
from deep3dmm.data.importers.npy import import_npy
from deep3dmm.data.prepared import PreparedDataset
from deep3dmm.errors import ConfigError

__all__ = [
    "IMPORTERS",
    "import_coma",
    "import_dataset",
    "import_dfaust",
    "import_folder",
    "import_ict",
    "import_npy",
]

IMPORTERS = {
    "coma": import_coma,
    "dfaust": import_dfaust,
    "folder": import_folder,
    "ict": import_ict,
    "npy": import_npy,
}


def import_dataset(
    source: str, src: str | os.PathLike, out_dir: str | os.PathLike, **options
) -> PreparedDataset:
    """Run the importer named ``source`` (a key of :data:`IMPORTERS`)."""
    if source not in IMPORTERS:
        raise ConfigError(f"unknown source {source!r}", fix=f"use one of {sorted(IMPORTERS)}")
    return IMPORTERS[source](src, out_dir, **options)
