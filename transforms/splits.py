"""Deterministic, leakage-free train/eval/test assignment.

A record's own ``split`` wins. Otherwise the split is a stable hash of a
grouping key (``video_id`` by default, or e.g. a channel column), so it never
changes between runs or runners. Records whose cleaned text is identical are
one group: they all take the split of the group's smallest key (or of its
explicitly split members), so a re-upload never sits in train and eval at once.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Iterable

from transforms.records import SPLITS

_BUCKETS = 10_000


@dataclasses.dataclass(frozen=True)
class SplitConfig:
    """Percentages of train/eval/test and a salt that reshuffles every split."""

    train: int = 80
    eval: int = 10
    test: int = 10
    salt: str = ""

    def __post_init__(self) -> None:
        parts = (self.train, self.eval, self.test)
        if any(p < 0 for p in parts) or sum(parts) != 100:
            raise ValueError(f"Split percentages must be >= 0 and sum to 100. Received: {parts}")

    @classmethod
    def parse(cls, ratios: str, salt: str = "") -> SplitConfig:
        """Parses ``"80,10,10"``."""
        try:
            train, eval_, test = (int(part) for part in ratios.split(","))
        except ValueError:
            raise ValueError(
                f"--split-ratios expects TRAIN,EVAL,TEST. Received: {ratios!r}"
            ) from None
        return cls(train, eval_, test, salt)


def hash_split(key: str, config: SplitConfig = SplitConfig()) -> str:
    """The split of a grouping key: the same on every machine and every run."""
    digest = hashlib.md5(f"{config.salt}\x00{key}".encode(), usedforsecurity=False).digest()
    bucket = int.from_bytes(digest[:8], "big") % _BUCKETS
    if bucket < config.train * _BUCKETS // 100:
        return "train"
    if bucket < (config.train + config.eval) * _BUCKETS // 100:
        return "eval"
    return "test"


def group_split(members: Iterable[tuple[str, str | None]], config: SplitConfig) -> str:
    """The one split for a group of identical texts.

    Args:
      members: ``(group_key, explicit_split_or_None)`` for each record.
    Returns:
      The explicit split of the member with the smallest key if any member has
      one, else the hash split of the smallest key.
    """
    members = sorted(members, key=lambda m: (m[1] is None, m[0]))
    key, explicit = members[0]
    return explicit if explicit in SPLITS else hash_split(key, config)
