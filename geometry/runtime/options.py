"""Options objects, shared mechanics: one normalising setter, keyword overrides, and the keyword form of a cached call.

Each algorithm family keeps its options in its own subpackage (`geometry.boundary.options`, `geometry.slices.options`,
`geometry.inspection.options`): frozen dataclasses, checked once in ``__post_init__`` with `geometry.runtime.validate`.
What they share lives here, so a rule (a keyword left at None keeps the option's value) is written once.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, Generic, TypeVar

from geometry.runtime.memo import Memoized

__all__ = ["KeywordOptions", "options_with", "set_field", "with_overrides"]

Opts = TypeVar("Opts")
R = TypeVar("R")


def set_field(obj: object, name: str, value: Any) -> None:
    """Normalise a field of a frozen dataclass once, in its ``__post_init__``."""
    object.__setattr__(obj, name, value)


def options_with(options_type: type[Opts], options: Opts | None, fields: dict[str, Any]) -> Opts:
    """``options`` (default: ``options_type()``) with the ``fields`` that are not None replaced and checked again."""
    given = {name: value for name, value in fields.items() if value is not None}
    if options is None:
        return options_type(**given)
    if not isinstance(options, options_type):
        raise TypeError(f"expected options to be a {options_type.__name__}, got {type(options).__name__}")
    return dataclasses.replace(options, **given) if given else options  # type: ignore[type-var]


class KeywordOptions(Generic[R]):
    """A memoized function of ``options=`` that also takes the options' fields as keywords.

    ``f(handle, x, resolution=7)`` is ``f(handle, x, options=Options(resolution=7))``; ``options=`` and keywords
    together: the keywords that are not None replace those fields. ``.cached``, ``.is_cached`` and ``.key`` fold
    the same way, so `ui.progress.run_cached` can take the keyword form. ``extra(*args, **kwargs)``: further
    keyword arguments derived from the call (e.g. a property of the handle that its fingerprint does not hold).
    """

    def __init__(
        self,
        memoized: Memoized[..., R],
        options_type: type,
        *,
        extra: Callable[..., dict[str, Any]] | None = None,
        doc: str | None = None,
    ) -> None:
        self.memoized = memoized
        self.options_type = options_type
        self.extra = extra
        self.fields = frozenset(f.name for f in dataclasses.fields(options_type))
        self.__name__ = memoized.__name__
        self.__qualname__ = getattr(memoized, "__qualname__", memoized.__name__)
        self.__module__ = memoized.__module__
        self.__doc__ = doc or memoized.__doc__
        self.__wrapped__ = memoized

    def fold(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
        """``kwargs`` with the option fields moved into one ``options`` object (and the ``extra`` arguments)."""
        kwargs = dict(kwargs)
        fields = {name: kwargs.pop(name) for name in list(kwargs) if name in self.fields}
        if fields or kwargs.get("options") is None:
            kwargs["options"] = options_with(self.options_type, kwargs.get("options"), fields)
        if self.extra is not None:
            kwargs.update(self.extra(*args, **kwargs))
        return kwargs

    def __call__(self, *args: Any, **kwargs: Any) -> R:
        return self.memoized(*args, **self.fold(args, kwargs))

    def cached(self, *args: Any, **kwargs: Any) -> R | None:
        return self.memoized.cached(*args, **self.fold(args, kwargs))

    def is_cached(self, *args: Any, **kwargs: Any) -> bool:
        return self.memoized.is_cached(*args, **self.fold(args, kwargs))

    def key(self, *args: Any, **kwargs: Any) -> str:
        return self.memoized.key(*args, **self.fold(args, kwargs))

    def __repr__(self) -> str:
        return f"<memoized {self.memoized.name} with {self.options_type.__name__} keywords>"


def with_overrides(options: Opts, **changes: Any) -> Opts:
    """``options`` with the fields in ``changes`` that are not None replaced (and checked again).

    The keyword forms of `deepfool` / `boundary_curvature` use it: a keyword left at None keeps the option's value.
    """
    return options_with(type(options), options, changes)
