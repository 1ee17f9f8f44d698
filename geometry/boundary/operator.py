"""Matrix-free linear operators: a batch of ``batch`` symmetric operators on R^size, applied one vector per operator.

The eigen-solvers (`geometry.boundary.lanczos`) only ever see this protocol, never a model: the Hessian of a logit
difference (`geometry.boundary.hessian.HessianOperator`), the shape operator ``H / ||grad F||`` (`ScaledOperator`)
and a plain matrix (`MatrixOperator`, for tests and references) are interchangeable, as in hessian-eigenthings.
The operator says where and in what precision its vectors live (``device``, ``dtype``); the solver draws its start
vectors there and hands them over in that dtype.

Shapes: ``matvec(v)`` takes ``(batch, size)`` (row i goes to operator i) and returns ``(batch, size)``; operators
that can, also take ``(batch, B, size)`` (B vectors per operator) and return ``(batch, B, size)``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol, runtime_checkable

import torch

__all__ = ["FunctionOperator", "LinearOperator", "MatrixOperator", "ScaledOperator", "check_operator"]


@runtime_checkable
class LinearOperator(Protocol):
    """``batch`` linear operators on R^``size``, applied matrix-free by `matvec`."""

    @property
    def size(self) -> int:
        """D: the dimension each operator acts on."""
        ...

    @property
    def batch(self) -> int:
        """N: how many independent operators (one per boundary point)."""
        ...

    @property
    def device(self) -> torch.device:
        """Where `matvec` wants its vectors."""
        ...

    @property
    def dtype(self) -> torch.dtype:
        """The floating dtype `matvec` wants its vectors in."""
        ...

    def matvec(self, v: torch.Tensor) -> torch.Tensor:
        """``(batch, size) -> (batch, size)``, or ``(batch, B, size) -> (batch, B, size)``."""
        ...


def check_operator(operator: object) -> LinearOperator:
    """``operator`` when it has the `LinearOperator` attributes; TypeError naming what is missing otherwise."""
    missing = [a for a in ("size", "batch", "device", "dtype", "matvec") if not hasattr(operator, a)]
    if missing:
        raise TypeError(
            f"expected a LinearOperator (size, batch, device, dtype, matvec), got a {type(operator).__name__} "
            f"without {', '.join(missing)} (wrap a function in geometry.boundary.operator.FunctionOperator)"
        )
    return operator  # type: ignore[return-value]


class _StoredLayout:
    """The ``batch``, ``device`` and ``dtype`` of a `LinearOperator` that stores them when it is built (as
    ``_batch``, ``_device``, ``_dtype``): one definition for the matrix and the function operators."""

    _batch: int
    _device: torch.device
    _dtype: torch.dtype

    @property
    def batch(self) -> int:
        return self._batch

    @property
    def device(self) -> torch.device:
        return self._device

    @property
    def dtype(self) -> torch.dtype:
        return self._dtype


class MatrixOperator(_StoredLayout):
    """A symmetric matrix (D, D) shared by ``batch`` rows, or a batch of matrices (N, D, D), as a `LinearOperator`.

    ``dtype`` (default: the matrix's) is the precision of the products; ``device`` (default: the matrix's) where.
    """

    def __init__(
        self,
        matrix: torch.Tensor,
        *,
        batch: int | None = None,
        dtype: torch.dtype | None = None,
        device: torch.device | str | None = None,
    ) -> None:
        if not isinstance(matrix, torch.Tensor) or matrix.dim() not in (2, 3) or matrix.shape[-1] != matrix.shape[-2]:
            got = tuple(matrix.shape) if isinstance(matrix, torch.Tensor) else type(matrix).__name__
            raise ValueError(f"expected a square matrix (D, D) or a batch (N, D, D), got {got}")
        stacked = matrix.dim() == 3
        if stacked and batch is not None and batch != matrix.shape[0]:
            raise ValueError(f"expected batch {matrix.shape[0]} for a batch of {matrix.shape[0]} matrices, got {batch}")
        self._batch = int(matrix.shape[0]) if stacked else int(batch if batch is not None else 1)
        self._dtype = dtype if dtype is not None else matrix.dtype
        self._device = torch.device(device) if device is not None else matrix.device
        self.matrix = matrix.detach().to(self._device, self._dtype)

    @property
    def size(self) -> int:
        return int(self.matrix.shape[-1])

    def matvec(self, v: torch.Tensor) -> torch.Tensor:
        m = self.matrix.to(v.device, v.dtype)
        return v @ m.T if m.dim() == 2 else torch.einsum("nij,n...j->n...i", m, v)

    __call__ = matvec


class FunctionOperator(_StoredLayout):
    """A function ``v -> A v`` with the sizes the solvers need (for operators that are not a class of their own)."""

    def __init__(
        self,
        function: Callable[[torch.Tensor], torch.Tensor],
        size: int,
        *,
        batch: int = 1,
        device: torch.device | str | None = None,
        dtype: torch.dtype = torch.float32,
    ) -> None:
        self.function = function
        self._size = int(size)
        self._batch = int(batch)
        self._device = torch.device(device) if device is not None else torch.device("cpu")
        self._dtype = dtype

    @property
    def size(self) -> int:
        return self._size

    def matvec(self, v: torch.Tensor) -> torch.Tensor:
        return self.function(v)

    __call__ = matvec


class ScaledOperator:
    """``A_i / scale_i`` for each row i of a `LinearOperator` A: the shape operator ``H_F / ||grad F||``."""

    def __init__(self, operator: LinearOperator, scale: torch.Tensor) -> None:
        self.operator = check_operator(operator)
        scale = scale.detach().reshape(-1)
        if len(scale) != operator.batch:
            raise ValueError(f"expected one scale per operator ({operator.batch}), got {len(scale)}")
        self.scale = scale.to(operator.device)

    @property
    def size(self) -> int:
        return self.operator.size

    @property
    def batch(self) -> int:
        return self.operator.batch

    @property
    def device(self) -> torch.device:
        return self.operator.device

    @property
    def dtype(self) -> torch.dtype:
        return self.operator.dtype

    def matvec(self, v: torch.Tensor) -> torch.Tensor:
        out = self.operator.matvec(v)
        return out / self.scale.reshape(-1, *([1] * (v.dim() - 1))).to(out.dtype)

    __call__ = matvec
