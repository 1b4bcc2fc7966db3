"""Registered-mesh datasets: the prepared format, importers, generators, splits."""

from deep3dmm.data.dataset import RegisteredMeshDataset
from deep3dmm.data.normalization import Normalization
from deep3dmm.data.prepared import (
    IndexRow,
    PreparedDataset,
    PreparedDatasetWriter,
    write_prepared_dataset,
)
from deep3dmm.data.splits import PROTOCOLS, Split, make_split

__all__ = [
    "IndexRow",
    "Normalization",
    "PROTOCOLS",
    "PreparedDataset",
    "PreparedDatasetWriter",
    "RegisteredMeshDataset",
    "Split",
    "make_split",
    "write_prepared_dataset",
]
