import os

import numpy as np
import pytest

from ccs_core.errors import CacheError
from ccs_core.store import Store, cache_key


def test_key_is_canonical():
    assert cache_key(a=1, b=[1, 2]) == cache_key(b=[1, 2], a=1)
    assert cache_key(a=1) != cache_key(a=2)


def test_json_roundtrip_and_persistence(tmp_path):
    s = Store(tmp_path)
    s.set("spans", "k", {"x": [1, 2], "y": "é"})
    s.close()
    assert Store(tmp_path).get("spans", "k") == {"x": [1, 2], "y": "é"}
    assert Store(tmp_path).get("spans", "missing") is None


def test_values_are_json_text_not_pickles(tmp_path):
    s = Store(tmp_path)
    s.set("v", "k", {"a": 1})
    raw = s._cache.get("v/k")
    assert isinstance(raw, str) and raw == '{"a":1}'


def test_arrays_atomic_and_corrupt_entry_is_a_miss(tmp_path):
    s = Store(tmp_path)
    s.set_arrays("dec", "k", {"heads": np.arange(6.0).reshape(2, 3)})
    np.testing.assert_array_equal(s.get_arrays("dec", "k")["heads"], np.arange(6.0).reshape(2, 3))
    assert not [p for p in (tmp_path / "arrays" / "dec").iterdir() if p.name.startswith(".tmp")]
    (tmp_path / "arrays" / "dec" / "k.npz").write_bytes(b"garbage")
    assert s.get_arrays("dec", "k") is None


def test_memory_store():
    s = Store(None)
    s.set("a", "b", [1])
    s.set_arrays("a", "b", {"x": np.ones(2)})
    assert s.get("a", "b") == [1] and s.get_arrays("a", "b")["x"].sum() == 2
    assert not s.persistent


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write anywhere")
def test_unwritable_dir_is_a_clear_error(tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    with pytest.raises(CacheError, match="CCS_CACHE_DIR"):
        Store(ro / "cache")


def test_unwritable_path_is_a_clear_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(CacheError, match="cannot be written"):
        Store(blocker / "cache")


def test_pickled_or_corrupt_values_are_never_loaded(tmp_path):
    import diskcache

    class Boom:
        def __reduce__(self):
            return (pytest.fail, ("a cached pickle was loaded",))

    with diskcache.Cache(str(tmp_path / "json")) as plain:  # someone else writes into the cache dir
        plain.set("v/evil", Boom())
        plain.set("v/junk", "{not json")
    s = Store(tmp_path)
    assert s.get("v", "evil") is None and s.get("v", "junk") is None
    s.set("v", "evil", {"ok": True})  # replaced by a proper JSON entry
    assert s.get("v", "evil") == {"ok": True}


def test_a_corrupt_index_is_moved_aside_and_rebuilt(tmp_path):
    import warnings

    from ccs_core.store import Store

    s = Store(tmp_path / "c")
    s.set("spans", "k", {"a": 1})
    s.set_arrays("emb", "k", {"x": __import__("numpy").ones(3)})
    del s
    db = tmp_path / "c" / "json" / "cache.db"
    db.write_bytes(b"this is not a sqlite database" * 100)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        again = Store(tmp_path / "c")
    assert any("was corrupt" in str(w.message) for w in caught)
    assert again.get("spans", "k") is None  # a miss, recomputed on demand
    again.set("spans", "k", {"a": 2})
    assert again.get("spans", "k") == {"a": 2}
    assert again.get_arrays("emb", "k") is not None  # arrays untouched
    assert list((tmp_path / "c").glob("json.corrupt-*"))


def test_mapped_entries_appear_whole_are_replaced_whole_and_reopen_when_edited(tmp_path):
    """``write_mapped``: nothing is visible until the block ends; an error leaves nothing; a second
    writer of the same entry replaces it; an open entry is reused until its files change."""
    import pytest

    from ccs_core.store import Store

    store = Store(tmp_path / "c")
    shapes = {"a": (4, 3)}
    with store.write_mapped("k", "x") as w:
        f = w.create("a", (4, 3))
        f.write(0, np.ones((2, 3), dtype=np.float32))
        assert store.open_mapped("k", "x", shapes) is None  # not yet an entry
        f.write(2, np.full((2, 3), 2, dtype=np.float32))
    first = store.open_mapped("k", "x", shapes)
    assert first["a"].tolist() == [[1] * 3] * 2 + [[2] * 3] * 2
    assert store.open_mapped("k", "x", shapes) is first  # kept open
    with pytest.raises(RuntimeError):
        with store.write_mapped("k", "x") as w:
            w.put("a", np.zeros((4, 3), dtype=np.float32))
            raise RuntimeError("stop")
    assert store.open_mapped("k", "x", shapes)["a"][0, 0] == 1  # the failed writer changed nothing
    with store.write_mapped("k", "x") as w:
        w.put("a", np.full((4, 3), 7, dtype=np.float32))
    assert store.open_mapped("k", "x", shapes)["a"][0, 0] == 7  # replaced whole
    np.save(tmp_path / "c" / "arrays" / "k" / "x" / "a.npy", np.full((4, 3), np.nan, dtype=np.float32))
    assert store.open_mapped("k", "x", shapes) is None  # edited in place: reopened, checked, refused
    assert store.open_mapped("k", "x", {"a": (5, 3)}) is None  # another shape
    assert not [p for p in (tmp_path / "c" / "arrays" / "k").iterdir() if p.name.startswith(".tmp")]
    memory = Store(None)
    with memory.write_mapped("k", "x") as w:
        w.put("a", np.ones((4, 3), dtype=np.float32))
    assert memory.open_mapped("k", "x", shapes)["a"].sum() == 12
