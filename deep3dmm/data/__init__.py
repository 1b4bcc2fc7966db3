"""Registered-mesh datasets: the prepared format, importers, generators, splits."""

from deep3dmm._lazy import lazy_exports

_EXPORTS = {
    "RegisteredMeshDataset": "deep3dmm.data.dataset",
    "IMPORTERS": "deep3dmm.data.importers",
    "import_dataset": "deep3dmm.data.importers",
    "DatasetInfo": "deep3dmm.data.info",
    "dataset_info": "deep3dmm.data.info",
    "Normalization": "deep3dmm.data.normalization",
    "IndexRow": "deep3dmm.data.prepared",
    "PreparedDataset": "deep3dmm.data.prepared",
    "PreparedDatasetWriter": "deep3dmm.data.prepared",
    "write_prepared_dataset": "deep3dmm.data.prepared",
    "PROTOCOLS": "deep3dmm.data.splits",
    "Split": "deep3dmm.data.splits",
    "make_split": "deep3dmm.data.splits",
}

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

__getattr__, __dir__ = lazy_exports(__name__, globals(), _EXPORTS)
