"""Bounds of ``service.limits`` that need the collection (or the peer's collections) to check,
shared by the REST and gRPC surfaces: sizes of a collection config and of a new shard key, and
``storage.max_collections``. Each refusal is a 400 naming the field and the bound."""

from __future__ import annotations

from qcluster.collection import Collection
from qcluster.errors import BadInputError
from qcluster.models.bounds import refuse_above
from qcluster.models.collections import CollectionConfig
from qcluster.models.config import HnswConfig, HnswConfigDiff
from qcluster.settings import LimitsSettings
from qcluster.toc import TableOfContents
from qcluster.types import DEFAULT_VECTOR


def _bounded_values(config: CollectionConfig) -> dict[str, tuple[int | None, str]]:
    """field -> (value, the ``service.limits`` setting bounding it), for the parts of a collection
    config whose size costs the peer (threads and files per shard, memory per graph link)."""
    p = config.params
    out: dict[str, tuple[int | None, str]] = {
        "shard_number": (p.shard_number, "max_shard_number"),
        "replication_factor": (p.replication_factor, "max_replication_factor"),
        "write_consistency_factor": (p.write_consistency_factor, "max_replication_factor"),
        "vectors": (len(p.vectors), "max_named_vectors"),
    }
    hnsw: list[tuple[str, HnswConfig | HnswConfigDiff | None]] = [("hnsw_config", config.hnsw_config)]
    hnsw += [
        (f"vectors.{n}.hnsw_config" if n != DEFAULT_VECTOR else "vectors.hnsw_config", v.hnsw_config)
        for n, v in p.vectors.items()
    ]
    for where, h in hnsw:
        if h is None:
            continue
        out[f"{where}.m"] = (h.m, "max_hnsw_m")
        out[f"{where}.payload_m"] = (h.payload_m, "max_hnsw_m")
        out[f"{where}.ef_construct"] = (h.ef_construct, "max_hnsw_ef_construct")
    return out


def check_config_bounds(
    config: CollectionConfig, bounds: LimitsSettings, current: CollectionConfig | None = None
) -> None:
    """Refuse a collection config whose sizes no legitimate use needs. On an update only the
    values it changes are checked, so a collection created under looser bounds can still be
    changed otherwise."""
    before = {} if current is None else _bounded_values(current)
    for field, (value, setting) in _bounded_values(config).items():
        if value is None or before.get(field, (None, ""))[0] == value:
            continue
        what = "number of named vectors" if field == "vectors" else field.rsplit(".", 1)[-1]
        refuse_above(field, what, value, setting, bounds)


def check_collection_count(toc: TableOfContents, name: str) -> None:
    """``storage.max_collections`` (Qdrant's setting): a new collection beyond it is refused."""
    max_collections = toc.storage.max_collections
    if max_collections is not None and len(toc.collections) >= max_collections and not toc.exists(name):
        raise BadInputError(
            f"Can't create collection with name {name}. Max collections limit reached: "
            f"{max_collections} (storage.max_collections)",
            "collection_name",
        )


def check_new_shard_key(
    col: Collection,
    bounds: LimitsSettings,
    shards_number: int | None,
    replication_factor: int | None,
    placement: list[int] | None = None,
    field: str = "",
) -> None:
    """A new shard key's shards count toward the collection's ``max_shard_number`` (every key's
    do), its replication factor and placement toward ``max_replication_factor``; ``field``
    prefixes the names in the message (``create_sharding_key.``)."""
    total = len(col.holder.sets) + (shards_number or col.config.params.shard_number)
    what = "the collection's number of shards"
    refuse_above(f"{field}shards_number", what, total, "max_shard_number", bounds)
    if replication_factor is not None:
        name = f"{field}replication_factor"
        refuse_above(name, "replication_factor", replication_factor, "max_replication_factor", bounds)
    if placement is not None:
        name = f"{field}placement"
        refuse_above(name, "number of peers", len(placement), "max_replication_factor", bounds)
