"""Registered-mesh datasets: the prepared format, importers, generators, splits."""

from deep3dmm.data.prepared import (
    IndexRow,
    PreparedDataset,
    PreparedDatasetWriter,
    write_prepared_dataset,
)

__all__ = ["IndexRow", "PreparedDataset", "PreparedDatasetWriter", "write_prepared_dataset"]
