"""Boundary Atlas's compute library: the geometry of image classifiers, without the UI.

Works from a script, a notebook or the batch command line (``python -m geometry ...``);
never imports Streamlit. Images are float tensors ``(N, C, H, W)`` in [0, 1] pixel space and every
distance is L2 in that space (see docs/DESIGN.md §3).
"""

from __future__ import annotations

from geometry.boundary.curvature import (
    CurvatureProfile,
    CurvatureResult,
    PrincipalDirections,
    VulnerabilityResult,
    boundary_curvature,
    cached_curvature,
    curvature_profiles,
    curvature_vulnerability,
    principal_directions,
)
from geometry.boundary.deepfool import DeepFoolResult, cached_deepfool, deepfool, subspace_deepfool
from geometry.boundary.hessian import HessianOperator, hvp_check, resolve_method, smooth_handle
from geometry.boundary.lanczos import EigenResult, lanczos
from geometry.boundary.options import CurvatureOptions, DeepFoolOptions
from geometry.data.datasets import Dataset, builtin_datasets, load_dataset, load_image_folder, load_uploaded_images
from geometry.data.dct import (
    dct2,
    dct_basis_block,
    dct_diagonal_blocks,
    dct_flip,
    default_dct_blocks,
    idct2,
    low_pass,
)
from geometry.features.embedding import Embedding2D, PCAEmbedding, TSNEEmbedding, UMAPEmbedding, embed
from geometry.features.extract import FeatureSet, Head, NoAffineHeadError, compute_features, extract_features, find_head
from geometry.features.hull import HullReport, hull_distance, hull_report
from geometry.features.morph import MorphResult, cached_morph, morph
from geometry.features.regions import (
    FeaturePlane,
    FeatureRegionMap,
    PaintedRegions,
    exact_region_map,
    paint_regions,
    pca_plane,
    plane_through_features,
)
from geometry.inspection.connectivity import (
    PathResult,
    cached_connectivity_batch,
    connectivity_batch,
    find_path,
    find_paths,
)
from geometry.inspection.detection import (
    CurvatureStatistic,
    DetectionResult,
    DetectionVerdict,
    cached_evaluate_detection,
    curvature_statistic,
    detect,
    evaluate_detection,
    threshold_for_fpr,
)
from geometry.inspection.margins import (
    FrequencyBands,
    FrequencyMargins,
    cached_frequency_margins,
    frequency_bands,
    frequency_margins,
    random_subspace,
    subspace_margins,
)
from geometry.inspection.options import DetectionOptions, MarginOptions, PathOptions
from geometry.inspection.robustness import (
    ROTATION_SIZES,
    SweepResult,
    cached_image_sweep,
    cached_shapes_rotation_sweeps,
    cached_shapes_sweep,
    image_sweep,
    shapes_rotation_sweeps,
    shapes_sweep,
    transform_images,
)
from geometry.models.architectures import build_architecture
from geometry.models.cards import builtin_models, model_card, save_model, user_models, user_models_dir
from geometry.models.handle import ModelHandle, NonFiniteOutputError
from geometry.models.loading import load_model, read_state_dict, torchvision_architectures
from geometry.models.training import TrainConfig, TrainResult, train_cached, trained_model
from geometry.report import Report, ReportConfig, build_report, report_html, write_report
from geometry.runtime.cache import DiskCache, cache_key, default_cache
from geometry.runtime.compute import Cancelled, CancelToken, default_device, map_batches
from geometry.slices.boundary_planes import curvature_plane, normal_plane, two_class_plane
from geometry.slices.evaluate import SliceResult, cached_slice, evaluate_slice
from geometry.slices.options import SliceOptions
from geometry.slices.planes import (
    Plane,
    custom_plane,
    dct_plane,
    input_space_plane,
    plane_from_directions,
    random_plane,
    three_image_plane,
)
from geometry.slices.stats import RegionIoU, SliceStats, region_iou, slice_statistics

__all__ = [
    "boundary_curvature",
    "build_architecture",
    "build_report",
    "builtin_datasets",
    "builtin_models",
    "cache_key",
    "cached_connectivity_batch",
    "cached_curvature",
    "cached_deepfool",
    "cached_evaluate_detection",
    "cached_frequency_margins",
    "cached_image_sweep",
    "cached_morph",
    "cached_shapes_rotation_sweeps",
    "cached_shapes_sweep",
    "cached_slice",
    "Cancelled",
    "CancelToken",
    "compute_features",
    "connectivity_batch",
    "curvature_profiles",
    "curvature_statistic",
    "curvature_vulnerability",
    "CurvatureProfile",
    "CurvatureOptions",
    "CurvatureResult",
    "CurvatureStatistic",
    "curvature_plane",
    "custom_plane",
    "Dataset",
    "dct2",
    "dct_basis_block",
    "dct_diagonal_blocks",
    "dct_flip",
    "dct_plane",
    "deepfool",
    "DeepFoolOptions",
    "DeepFoolResult",
    "default_cache",
    "default_dct_blocks",
    "default_device",
    "detect",
    "DetectionOptions",
    "DetectionResult",
    "DetectionVerdict",
    "DiskCache",
    "EigenResult",
    "embed",
    "Embedding2D",
    "evaluate_detection",
    "evaluate_slice",
    "exact_region_map",
    "extract_features",
    "FeaturePlane",
    "FeatureRegionMap",
    "FeatureSet",
    "find_head",
    "find_path",
    "find_paths",
    "frequency_bands",
    "frequency_margins",
    "FrequencyBands",
    "MarginOptions",
    "FrequencyMargins",
    "Head",
    "HessianOperator",
    "hull_distance",
    "hull_report",
    "HullReport",
    "hvp_check",
    "idct2",
    "image_sweep",
    "input_space_plane",
    "lanczos",
    "load_dataset",
    "load_image_folder",
    "load_model",
    "load_uploaded_images",
    "low_pass",
    "map_batches",
    "model_card",
    "ModelHandle",
    "morph",
    "MorphResult",
    "NoAffineHeadError",
    "NonFiniteOutputError",
    "normal_plane",
    "paint_regions",
    "PaintedRegions",
    "PathOptions",
    "PathResult",
    "pca_plane",
    "PCAEmbedding",
    "Plane",
    "plane_from_directions",
    "plane_through_features",
    "principal_directions",
    "PrincipalDirections",
    "random_plane",
    "random_subspace",
    "read_state_dict",
    "region_iou",
    "RegionIoU",
    "Report",
    "report_html",
    "ReportConfig",
    "resolve_method",
    "ROTATION_SIZES",
    "save_model",
    "shapes_rotation_sweeps",
    "shapes_sweep",
    "slice_statistics",
    "SliceOptions",
    "SliceResult",
    "SliceStats",
    "smooth_handle",
    "subspace_deepfool",
    "subspace_margins",
    "SweepResult",
    "three_image_plane",
    "threshold_for_fpr",
    "torchvision_architectures",
    "train_cached",
    "TrainConfig",
    "trained_model",
    "TrainResult",
    "transform_images",
    "TSNEEmbedding",
    "two_class_plane",
    "UMAPEmbedding",
    "user_models",
    "user_models_dir",
    "VulnerabilityResult",
    "write_report",
]
