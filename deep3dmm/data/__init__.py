"""Registered-mesh datasets: the prepared format, importers, generators, splits."""

from deep3dmm.data.dataset import RegisteredMeshDataset
from deep3dmm.data.importers import IMPORTERS, import_dataset
from deep3dmm.data.info import DatasetInfo, dataset_info
from deep3dmm.data.normalization import Normalization
from deep3dmm.data.prepared import (
    IndexRow,
    PreparedDataset,
    PreparedDatasetWriter,
    write_prepared_dataset,
)
from deep3dmm.data.splits import PROTOCOLS, Split, make_split

__all__ = [
    "DatasetInfo",
    "IMPORTERS",
    "IndexRow",
    "Normalization",
    "PROTOCOLS",
    "PreparedDataset",
    "PreparedDatasetWriter",
    "RegisteredMeshDataset",
    "Split",
    "dataset_info",
    "import_dataset",
    "make_split",
    "write_prepared_dataset",
]
