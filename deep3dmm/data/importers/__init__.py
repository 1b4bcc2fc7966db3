"""Importers: one per source layout, each writing the prepared-dataset format.

Every importer has the signature
``import_<source>(src, out_dir, *, skip_bad=False, workers=None, **options) -> PreparedDataset``.
"""

from __future__ import annotations

import inspect
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
    "importer_options",
]

IMPORTERS = {
    "coma": import_coma,
    "dfaust": import_dfaust,
    "folder": import_folder,
    "ict": import_ict,
    "npy": import_npy,
}


def importer_options(source: str) -> tuple[str, ...]:
    """The keyword options the importer of ``source`` takes (from its signature).

    Raises:
        ConfigError: unknown source.
    """
    if source not in IMPORTERS:
        raise ConfigError(f"unknown source {source!r}", fix=f"use one of {sorted(IMPORTERS)}")
    parameters = inspect.signature(IMPORTERS[source]).parameters.values()
    return tuple(p.name for p in parameters if p.kind is p.KEYWORD_ONLY)


def import_dataset(
    source: str, src: str | os.PathLike, out_dir: str | os.PathLike, **options
) -> PreparedDataset:
    """Run the importer named ``source`` (a key of :data:`IMPORTERS`).

    Raises:
        ConfigError: unknown source, or options that do not apply to it.
    """
    known = importer_options(source)
    extra = [name for name in options if name not in known]
    if extra:
        raise ConfigError(
            f"option(s) {', '.join(extra)} do not apply to source {source!r}",
            fix=f"{source} takes {', '.join(known)}",
        )
    return IMPORTERS[source](src, out_dir, **options)
