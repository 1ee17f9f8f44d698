"""An atlas as a Parquet file (pandas + pyarrow), readable by anyone: one row per image, the provenance both as
columns and in the file's metadata (``boundary_atlas`` key: model, data set, fingerprints, parameters, code version,
class names)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pandas as pd

__all__ = ["read_atlas", "write_atlas"]

_META_KEY = b"boundary_atlas"


def write_atlas(df: pd.DataFrame, path: str | os.PathLike[str]) -> Path:
    """Write ``df`` (a `build_atlas` frame) to ``path`` as Parquet, atomically; returns the path."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    if not isinstance(df, pd.DataFrame):
        raise TypeError(f"expected a pandas DataFrame, got {type(df).__name__}")
    path = Path(path)
    if path.suffix.lower() not in (".parquet", ".pq"):
        raise ValueError(f"expected a .parquet file name, got {str(path)!r}")
    table = pa.Table.from_pandas(df, preserve_index=False)
    meta = dict(table.schema.metadata or {})
    meta[_META_KEY] = json.dumps(dict(df.attrs), default=str).encode()
    table = table.replace_schema_metadata(meta)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        pq.write_table(table, tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def read_atlas(path: str | os.PathLike[str]) -> pd.DataFrame:
    """The frame `write_atlas` wrote (``df.attrs`` restored from the file's metadata)."""
    import pyarrow.parquet as pq

    table = pq.read_table(Path(path))
    df = table.to_pandas()
    raw = (table.schema.metadata or {}).get(_META_KEY)
    df.attrs = json.loads(raw) if raw else {}
    return df
