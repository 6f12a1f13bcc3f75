"""ImageSet from memory and from folders: layout, labels, skipped corrupt files, keys, errors."""
from __future__ import annotations

import os

import numpy as np
import pytest
import torch
from PIL import Image

from ccs_core.data import ImageSet, load_image_folder
from ccs_core.errors import DataError


def img(seed: int, size=(20, 16), mode="RGB") -> Image.Image:
    arr = np.random.default_rng(seed).integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)
    return Image.fromarray(arr).convert(mode)


def pre(im: Image.Image) -> torch.Tensor:
    return torch.from_numpy(np.asarray(im.resize((8, 8)), dtype=np.float32)).permute(2, 0, 1) / 255


def test_from_images_keys_batches_and_labels():
    ims = [img(i, mode="L" if i == 1 else "RGB") for i in range(5)]
    s = ImageSet.from_images("mem", ims, labels=[0, 1, 1, 0, 1], classes=["a", "b"], groups=list("xyxyx"))
    assert len(s) == 5 and s.image(1).mode == "RGB" and s.image(-1).size == (20, 16)
    batches = list(s.batches(pre, batch_size=2))
    assert [b.shape for b in batches] == [(2, 3, 8, 8), (2, 3, 8, 8), (1, 3, 8, 8)]
    assert torch.equal(batches[0][1], pre(s.image(1)))
    assert s.labels == [0, 1, 1, 0, 1] and s.groups == list("xyxyx") and s.skipped == []
    same = ImageSet.from_images("other name", [img(i, mode="L" if i == 1 else "RGB") for i in range(5)])
    assert same.key == s.key
    changed = ims[:4] + [img(99)]
    assert ImageSet.from_images("mem", changed).key != s.key
    with pytest.raises(IndexError):
        s.image(5)


def test_from_images_validates_lengths():
    with pytest.raises(DataError, match="2 labels for 3 images"):
        ImageSet.from_images("m", [img(i) for i in range(3)], labels=[0, 1])
    with pytest.raises(DataError, match="outside"):
        ImageSet.from_images("m", [img(0)], labels=[2], classes=["a", "b"])


def _write_class_folder(root):
    for c, n in (("cat", 3), ("dog", 2), ("empty", 0)):
        (root / c).mkdir(parents=True)
        for i in range(n):
            img(10 * len(c) + i).save(root / c / f"{i}.png")
    (root / "notes.txt").write_text("not an image")
    (root / "dog" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    good = root / "cat" / "0.png"
    (root / "cat" / "truncated.png").write_bytes(good.read_bytes()[:-40])


def test_class_folder_layout_with_corrupt_files(tmp_path):
    root = tmp_path / "set"
    _write_class_folder(root)
    s = load_image_folder(root)
    assert s.name == "set" and s.classes == ["cat", "dog"] and len(s) == 5
    assert s.labels == [0, 0, 0, 1, 1]
    skipped = {os.path.basename(p): r for p, r in s.skipped}
    assert set(skipped) == {"broken.jpg", "truncated.png"}
    assert all(r for r in skipped.values())
    assert all(s.image(i).mode == "RGB" for i in range(len(s)))
    assert sum(b.shape[0] for b in s.batches(pre, 2)) == 5
    assert load_image_folder(root).key == s.key
    two = load_image_folder(root, max_per_class=1)
    assert two.labels == [0, 1] and two.key != s.key
    img(7).save(root / "dog" / "2.png")                   # a new file changes the key
    assert load_image_folder(root).key != s.key


def test_flat_folder(tmp_path):
    for i in range(3):
        img(i).save(tmp_path / f"im{i}.jpg")
    (tmp_path / "bad.png").write_bytes(b"garbage")
    big = tmp_path / "big.jpg"
    img(5, size=(256, 256)).save(big, quality=95)
    (tmp_path / "cut.jpg").write_bytes(big.read_bytes()[:len(big.read_bytes()) // 2])  # truncated JPEG
    big.unlink()
    s = load_image_folder(str(tmp_path), name="flat")
    assert s.name == "flat" and len(s) == 3 and s.labels is None and s.classes is None
    assert [os.path.basename(p) for p, _ in s.skipped] == ["bad.png", "cut.jpg"]
    assert len(load_image_folder(tmp_path, max_per_class=2)) == 2


def test_folder_errors(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        load_image_folder(tmp_path / "nope")
    f = tmp_path / "file.png"
    img(0).save(f)
    with pytest.raises(DataError, match="not a folder"):
        load_image_folder(f)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DataError, match="No readable images"):
        load_image_folder(empty)
    (empty / "a.jpg").write_bytes(b"broken")
    with pytest.raises(DataError, match="1 unreadable"):
        load_image_folder(empty)


def test_file_removed_after_loading(tmp_path):
    img(0).save(tmp_path / "a.png")
    img(1).save(tmp_path / "b.png")
    s = load_image_folder(tmp_path)
    (tmp_path / "b.png").unlink()
    with pytest.raises(DataError, match="Reload the folder"):
        s.image(1)


def test_a_folder_loaded_again_checks_only_new_or_changed_files(tmp_path, monkeypatch):
    import os
    import time

    import ccs_core.data as data

    monkeypatch.setenv("CCS_CACHE_DIR", str(tmp_path / "cache"))
    folder = tmp_path / "imgs"
    folder.mkdir()
    for i in range(4):
        Image.new("RGB", (8, 8), (60 * i, 0, 0)).save(folder / f"{i}.png")
    (folder / "bad.png").write_text("not an image")
    checked = []
    real = data.check_image
    monkeypatch.setattr(data, "check_image", lambda p: checked.append(p.name) or real(p))
    first = data.load_image_folder(folder)
    assert sorted(checked) == ["0.png", "1.png", "2.png", "3.png", "bad.png"] and len(first) == 4
    checked.clear()
    again = data.load_image_folder(folder)
    assert checked == [] and again.key == first.key and again.skipped == first.skipped  # a stat per file
    Image.new("RGB", (8, 8)).save(folder / "bad.png")  # repaired
    os.utime(folder / "bad.png", ns=(time.time_ns(), time.time_ns() + 10**9))
    repaired = data.load_image_folder(folder)
    assert checked == ["bad.png"] and len(repaired) == 5 and not repaired.skipped


def test_decoding_workers_keep_the_order_and_report_a_file_that_broke_in_one_line(tmp_path, monkeypatch):
    monkeypatch.setenv("CCS_CACHE_DIR", str(tmp_path / "cache"))
    from ccs_core.data import load_image_folder
    from ccs_core.errors import DataError

    folder = tmp_path / "imgs"
    folder.mkdir()
    rng = np.random.default_rng(1)
    for i in range(23):
        Image.fromarray(rng.integers(0, 255, (20, 30, 3), dtype=np.uint8)).save(folder / f"{i:02d}.png")
    images = load_image_folder(folder)

    def pre(im):
        return torch.from_numpy(np.asarray(im.resize((8, 8)), dtype=np.float32)).permute(2, 0, 1)

    here = torch.cat(list(images.batches(pre, 5, workers=0)))
    images.workers = 2
    there = list(images.batches(pre, 5))
    assert [b.shape[0] for b in there] == [5, 5, 5, 5, 3] and torch.equal(torch.cat(there), here)
    (folder / "17.png").write_text("broken after the folder was checked")
    with pytest.raises(DataError) as err:
        list(images.batches(pre, 5))
    assert "17.png could not be read any more" in str(err.value) and "Traceback" not in str(err.value)
