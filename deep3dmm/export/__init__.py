"""Export a trained run (ONNX / TorchScript, frozen, standard ops) and run the export.

``deep3dmm.export.export_run(RUN, OUT)`` writes the folder; ``deep3dmm.export.load(OUT)``
encodes and decodes with onnxruntime alone.
"""

from deep3dmm.export.exportable import ExportableAutoencoder
from deep3dmm.export.runtime import ExportedModel, load
from deep3dmm.export.writer import FORMATS, PARTS, ExportResult, export_model, export_run

__all__ = [
    "FORMATS",
    "PARTS",
    "ExportResult",
    "ExportableAutoencoder",
    "ExportedModel",
    "export_model",
    "export_run",
    "load",
]
