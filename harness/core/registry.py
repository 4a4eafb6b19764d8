"""One registry type for every kind of named component (methods, scorers): small, and strict about names."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Generic, TypeVar

from harness.core.errors import ConfigError

T = TypeVar("T")


class Registry(Generic[T]):
    """Components of one kind by their `name`. A second component under a taken name is refused, so two
    implementations can never silently shadow each other; an unknown name is a ConfigError listing the known."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._items: dict[str, T] = {}

    def register(self, item: T) -> T:
        name = getattr(item, "name", None)
        if not isinstance(name, str) or not name:
            raise TypeError(f"a {self.kind} needs a non-empty string `name`; {item!r} has {name!r}")
        if name in self._items:
            raise ValueError(f"a {self.kind} named {name!r} is already registered ({self._items[name]!r})")
        self._items[name] = item
        return item

    def get(self, name: str) -> T:
        try:
            return self._items[name]
        except KeyError:
            raise ConfigError(f"unknown {self.kind} {name!r}; choose from {', '.join(self._items)}.") from None

    def names(self) -> list[str]:
        """In registration order."""
        return list(self._items)

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[T]:
        return iter(self._items.values())
