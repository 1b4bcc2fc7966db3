"""Scan registration: bring raw scans (any topology, any unit) onto the template's topology.

Similarity alignment (landmarks, or principal axes + ICP), then optimal-step non-rigid ICP
(``trimesh.registration.nricp_amberg``); per-scan distance reports and heat maps; a
folder of scans becomes a prepared dataset.
"""

from deep3dmm.registration.landmarks import (
    TemplateLandmarks,
    check_counts,
    read_scan_landmarks,
    read_template_landmarks,
)
from deep3dmm.registration.nonrigid import DEFAULT_STEPS, Registration, register_scan
from deep3dmm.registration.pipeline import (
    RegistrationOptions,
    load_template,
    register_file,
    register_folder,
)
from deep3dmm.registration.report import distance_summary, scan_report, surface_distances
from deep3dmm.registration.rigid import (
    Similarity,
    align_to_scan,
    principal_axes_candidates,
    procrustes_similarity,
)
from deep3dmm.registration.scan import SCAN_SUFFIXES, Scan, read_scan, scan_unit_scale
from deep3dmm.registration.synthetic import SyntheticScan, crop, remesh, synthetic_scan

__all__ = [
    "DEFAULT_STEPS",
    "Registration",
    "RegistrationOptions",
    "SCAN_SUFFIXES",
    "Scan",
    "Similarity",
    "SyntheticScan",
    "TemplateLandmarks",
    "align_to_scan",
    "check_counts",
    "crop",
    "distance_summary",
    "load_template",
    "principal_axes_candidates",
    "procrustes_similarity",
    "read_scan",
    "read_scan_landmarks",
    "read_template_landmarks",
    "register_file",
    "register_folder",
    "register_scan",
    "remesh",
    "scan_report",
    "scan_unit_scale",
    "surface_distances",
    "synthetic_scan",
]
