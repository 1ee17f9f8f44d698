"""The dataset atlas: every image's boundary geometry in one table, computed in batch in this process or on a Ray
cluster (`build_atlas`), kept shard by shard in the disk cache (resumable), written as Parquet (`write_atlas`).

Modules: `options` (what is measured), `rows` (the columns of a batch of images), `shards` (sharding and the cached
shard), `engines` (local and Ray), `job` (the job itself), `io` (Parquet), `curves` (R(eps), comparing two atlases).
Above `geometry.inspection` (it runs its analyses), below `figures`.
"""

from __future__ import annotations

from geometry.atlas.curves import compare_atlases, eps_grid, robustness_curve
from geometry.atlas.engines import ENGINES, LocalEngine, ModelRecipe, RayEngine, make_engine, model_recipe
from geometry.atlas.io import read_atlas, write_atlas
from geometry.atlas.job import PROVENANCE_COLUMNS, AtlasProgress, atlas_status, build_atlas, cached_atlas
from geometry.atlas.options import ANALYSES, AtlasOptions, parse_analyses
from geometry.atlas.rows import BASE_COLUMNS, shard_rows
from geometry.atlas.shards import DEFAULT_SHARD_SIZE, Shard, atlas_shard, make_shard, plan_shards

__all__ = [
    "ANALYSES",
    "BASE_COLUMNS",
    "DEFAULT_SHARD_SIZE",
    "ENGINES",
    "PROVENANCE_COLUMNS",
    "AtlasOptions",
    "AtlasProgress",
    "LocalEngine",
    "ModelRecipe",
    "RayEngine",
    "Shard",
    "atlas_shard",
    "atlas_status",
    "build_atlas",
    "cached_atlas",
    "compare_atlases",
    "eps_grid",
    "make_engine",
    "make_shard",
    "model_recipe",
    "parse_analyses",
    "plan_shards",
    "read_atlas",
    "robustness_curve",
    "shard_rows",
    "write_atlas",
]
