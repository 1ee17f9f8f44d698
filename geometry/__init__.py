"""Boundary Atlas's compute library: the geometry of image classifiers, without the UI.

Works from a script, a notebook or the batch command line (``python -m geometry ...``);
never imports Streamlit. Images are float tensors ``(N, C, H, W)`` in [0, 1] pixel space and every
distance is L2 in that space (see DESIGN.md).
"""

from __future__ import annotations

from geometry.architectures import build_architecture
from geometry.cache import DiskCache, cache_key, default_cache
from geometry.compute import Cancelled, CancelToken, default_device, map_batches
from geometry.connectivity import PathResult, cached_connectivity_batch, connectivity_batch, find_path, find_paths
from geometry.curvature import (
    CurvatureProfile,
    CurvatureResult,
    PrincipalDirections,
    VulnerabilityResult,
    boundary_curvature,
    curvature_profiles,
    curvature_vulnerability,
    principal_directions,
)
from geometry.data import Dataset, builtin_datasets, load_dataset, load_image_folder, load_uploaded_images
from geometry.deepfool import DeepFoolResult, deepfool, subspace_deepfool
from geometry.detection import (
    CurvatureStatistic,
    DetectionResult,
    DetectionVerdict,
    cached_evaluate_detection,
    curvature_statistic,
    detect,
    evaluate_detection,
    threshold_for_fpr,
)
from geometry.embedding import Embedding2D, PCAEmbedding, TSNEEmbedding, UMAPEmbedding, embed
from geometry.feature_regions import (
    FeaturePlane,
    FeatureRegionMap,
    PaintedRegions,
    exact_region_map,
    paint_regions,
    pca_plane,
    plane_through_features,
)
from geometry.features import FeatureSet, Head, NoAffineHeadError, compute_features, extract_features, find_head
from geometry.handle import ModelHandle, NonFiniteOutputError
from geometry.hessian import HessianOperator, hvp_check, resolve_method, smooth_handle
from geometry.hull import HullReport, hull_distance, hull_report
from geometry.lanczos import EigenResult, lanczos
from geometry.loading import (
    builtin_models,
    load_model,
    model_card,
    read_state_dict,
    torchvision_architectures,
    user_models,
    user_models_dir,
)
from geometry.margins import (
    FrequencyBands,
    FrequencyMargins,
    cached_frequency_margins,
    frequency_bands,
    frequency_margins,
    random_subspace,
    subspace_margins,
)
from geometry.morph import MorphResult, morph
from geometry.planes import (
    Plane,
    custom_plane,
    dct_plane,
    input_space_plane,
    normal_plane,
    plane_from_directions,
    random_plane,
    three_image_plane,
    two_class_plane,
)
from geometry.report import Report, ReportConfig, build_report, report_html, write_report
from geometry.robustness import (
    SweepResult,
    cached_image_sweep,
    cached_shapes_sweep,
    image_sweep,
    shapes_sweep,
    transform_images,
)
from geometry.slice_stats import RegionIoU, SliceStats, region_iou, slice_statistics
from geometry.slices import SliceResult, cached_slice, evaluate_slice
from geometry.train import TrainConfig, TrainResult, train_cached, trained_model

__all__ = [
    "boundary_curvature",
    "build_architecture",
    "build_report",
    "builtin_datasets",
    "builtin_models",
    "cache_key",
    "cached_connectivity_batch",
    "cached_evaluate_detection",
    "cached_frequency_margins",
    "cached_image_sweep",
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
    "CurvatureResult",
    "CurvatureStatistic",
    "custom_plane",
    "Dataset",
    "dct_plane",
    "deepfool",
    "DeepFoolResult",
    "default_cache",
    "default_device",
    "detect",
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
    "FrequencyMargins",
    "Head",
    "HessianOperator",
    "hull_distance",
    "hull_report",
    "HullReport",
    "hvp_check",
    "image_sweep",
    "input_space_plane",
    "lanczos",
    "load_dataset",
    "load_image_folder",
    "load_model",
    "load_uploaded_images",
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
    "shapes_sweep",
    "slice_statistics",
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
