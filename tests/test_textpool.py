"""Bundled pool (size, diversity, determinism) and user pools (parsing, errors)."""
from __future__ import annotations

import hashlib

import pytest

from ccs_core.errors import DataError
from ccs_core.textpool import BUNDLED_PATH, TextPool, bundled_pool, load_pool


def test_bundled_pool_is_large_diverse_and_deduplicated():
    pool = bundled_pool()
    assert pool.name == "bundled" and len(pool) >= 3000
    assert len(set(pool.texts)) == len(pool.texts)
    assert len({t.lower() for t in pool.texts}) == len(pool.texts)
    assert all(t == t.strip() and 0 < len(t) <= 80 and "{" not in t for t in pool.texts)
    sections = {next(iter(t)) for t in pool.tags}
    for s in ("objects", "animals", "people", "professions", "countries", "colours", "materials",
              "art styles", "photo styles", "letters", "counts", "scenes", "weather", "emotions"):
        assert s in sections
    for span in ("A photo of a woman", "Photo taken in Monument Valley", "A photo with the letter J",
                 "Image with woven fabric design", "An image of Andorra", "Image with three people"):
        assert span in pool.texts, span
    assert pool.key == hashlib.sha256("\n".join(pool.texts).encode()).hexdigest()


def test_bundled_file_is_what_the_generator_writes():
    from ccs_core.resources.make_pool import build

    assert BUNDLED_PATH.read_text(encoding="utf-8") == "\n".join(build()) + "\n"


def test_load_pool_parses_comments_blanks_and_duplicates(tmp_path):
    f = tmp_path / "mine.txt"
    f.write_text("# my pool\n\n  A red car  \nA dog\nA red car\n#: nature\nA tree\n\nA dog\n", encoding="utf-8")
    pool = load_pool(f)
    assert pool.name == "mine"
    assert pool.texts == ["A red car", "A dog", "A tree"]
    assert pool.tags == [frozenset(), frozenset(), frozenset({"nature"})]
    plain = tmp_path / "plain.txt"
    plain.write_text("\ufeffone\ntwo\r\nthree\n", encoding="utf-8")   # BOM and CRLF are fine
    p2 = load_pool(plain)
    assert p2.texts == ["one", "two", "three"] and p2.tags is None
    assert p2.key != pool.key and load_pool(plain).key == p2.key


@pytest.mark.parametrize("content,match", [("", "no descriptions"), ("# only a comment\n\n", "no descriptions"),
                                           ("same\nsame\n  same \n", "1 distinct")])
def test_empty_or_duplicate_only_pool(tmp_path, content, match):
    f = tmp_path / "p.txt"
    f.write_text(content, encoding="utf-8")
    with pytest.raises(DataError, match=match):
        load_pool(f)


def test_unreadable_pools(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        load_pool(tmp_path / "missing.txt")
    with pytest.raises(DataError, match="not a file"):
        load_pool(tmp_path)
    bad = tmp_path / "latin1.txt"
    bad.write_bytes("caf\xe9\nna\xefve\n".encode("latin-1"))
    with pytest.raises(DataError, match="not valid UTF-8"):
        load_pool(bad)


def test_from_texts():
    pool = TextPool.from_texts("x", ["a  b", "c", "a b"], tags=[{"t1"}, {"t2"}, {"t3"}])
    assert pool.texts == ["a b", "c"] and pool.tags == [frozenset({"t1"}), frozenset({"t2"})]
    with pytest.raises(DataError, match="at least 2"):
        TextPool.from_texts("x", ["only"])
