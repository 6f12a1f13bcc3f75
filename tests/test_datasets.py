"""Dataset loaders on small fake copies laid out as the real datasets are on disk (nothing downloaded)."""
from __future__ import annotations

import json
import pickle

import numpy as np
import pytest
from PIL import Image

from ccs_core.datasets import load_dataset
from ccs_core.datasets import clean_name, country211_names, imagenet_classes, load_fairface
from ccs_core.errors import DataError


def png(path, colour=(10, 20, 30), size=8):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (size, size), colour).save(path, format="PNG")  # .jpg names hold PNG bytes: PIL reads both


def test_image_folder_with_cap_and_unreadable(tmp_path):
    for c in ("golden_retriever", "tabby_cat"):
        for i in range(3):
            png(tmp_path / c / f"{i}.png", (i * 50, 0, 0))
    (tmp_path / "tabby_cat" / "0bad.png").write_bytes(b"broken")
    iset, task = load_dataset(str(tmp_path))
    assert task.classnames == ["golden retriever", "tabby cat"] and "a photo of a {}." in task.templates
    assert len(iset) == 6 and iset.labels == [0, 0, 0, 1, 1, 1] and len(iset.skipped) == 1
    capped, _ = load_dataset(f"folder:{tmp_path}", max_per_class=2)
    assert capped.labels == [0, 0, 1, 1]


def test_missing_datasets_say_where_to_put_them(tmp_path):
    with pytest.raises(DataError, match=r"cifar-10-batches-py/"):
        load_dataset(f"cifar10:{tmp_path}")
    with pytest.raises(DataError, match="food-101"):
        load_dataset(f"food101:{tmp_path}")
    with pytest.raises(DataError, match="Unknown dataset"):
        load_dataset("mnist")
    with pytest.raises(DataError, match="not found"):
        load_fairface(tmp_path / "nope.csv")


def test_cifar10_from_torchvision_layout(tmp_path, monkeypatch):
    import torchvision.datasets.cifar as tvc

    monkeypatch.setattr(tvc.CIFAR10, "_check_integrity", lambda self: True)
    monkeypatch.setattr(tvc, "check_integrity", lambda *a, **k: True)
    d = tmp_path / "cifar-10-batches-py"
    d.mkdir()
    data = np.random.default_rng(0).integers(0, 255, (6, 3 * 32 * 32), dtype=np.uint8)
    with open(d / "test_batch", "wb") as f:
        pickle.dump({"data": data, "labels": [0, 1, 2, 0, 1, 0]}, f)
    with open(d / "batches.meta", "wb") as f:
        pickle.dump({"label_names": ["airplane", "auto_mobile", "bird"]}, f)
    iset, task = load_dataset(f"cifar10:{tmp_path}", max_per_class=2)
    assert task.classnames == ["airplane", "auto mobile", "bird"]
    assert len(task.templates) == 8
    _, paper = load_dataset(f"cifar10:{tmp_path}", max_per_class=2, protocol="paper")
    assert len(paper.templates) == 18 and paper.templates[2] == "a black and white photo of a {}."
    assert paper.classnames == task.classnames and len(task.templates) == 8  # the standard task is unchanged
    assert iset.labels == [0, 1, 2, 0, 1] and len(iset) == 5
    assert np.array_equal(np.asarray(iset.image(4)), data[4].reshape(3, 32, 32).transpose(1, 2, 0))


def test_food101_and_pets_layouts(tmp_path):
    food = tmp_path / "food-101"
    meta = {"apple_pie": ["apple_pie/1", "apple_pie/2"], "baby_back_ribs": ["baby_back_ribs/7"]}
    (food / "meta").mkdir(parents=True)
    (food / "meta" / "test.json").write_text(json.dumps(meta))
    for rel in ["apple_pie/1", "baby_back_ribs/7"]:
        png(food / "images" / f"{rel}.jpg")
    iset, task = load_dataset(f"food101:{tmp_path}")  # apple_pie/2 is missing: skipped, counted
    assert task.classnames == ["apple pie", "baby back ribs"]
    assert task.templates == ["a photo of {}, a type of food."]
    assert iset.labels == [0, 1] and [r for _, r in iset.skipped] == ["file is missing"]

    pets = tmp_path / "oxford-iiit-pet"
    (pets / "annotations").mkdir(parents=True)
    (pets / "annotations" / "test.txt").write_text("Abyssinian_1 1 1 1\namerican_bulldog_3 2 2 1\n")
    png(pets / "images" / "Abyssinian_1.jpg")
    png(pets / "images" / "american_bulldog_3.jpg")
    iset, task = load_dataset(f"pets:{tmp_path}")
    assert task.classnames == ["Abyssinian", "American Bulldog"] and iset.labels == [0, 1]


def test_country211_maps_iso_folders_to_names(tmp_path):
    test = tmp_path / "country211" / "test"  # torchvision's Country211 layout: <root>/country211/test/<CODE>/
    for code in ("GB", "KR", "US", "XK"):
        for i in range(2):
            (test / code).mkdir(parents=True, exist_ok=True)
            Image.new("RGB", (8, 8), (i * 90, 40, 200)).save(test / code / f"{i}.jpg", format="JPEG")
    with pytest.warns(UserWarning, match="4 of 211 countries"):
        iset, task = load_dataset(f"country211:{tmp_path}", max_per_class=1)
    assert task.classnames == ["United Kingdom", "South Korea", "United States", "Kosovo"]
    assert iset.labels == [0, 1, 2, 3] and "a photo i took in {}." in task.templates
    names = country211_names()
    assert len(names) == 211 and names["AD"] == "Andorra" and names["ZW"] == "Zimbabwe"
    (test / "QQ").mkdir()
    Image.new("RGB", (8, 8)).save(test / "QQ" / "0.jpg", format="JPEG")
    with pytest.raises(DataError, match=r"QQ.*standard Country-211 test split"):
        load_dataset(f"country211:{tmp_path}")


def test_country211_paper_protocol_uses_clips_class_names(tmp_path):
    test = tmp_path / "country211" / "test"
    for code in ("CD", "CI", "KG", "US"):  # three worded differently in CLIP's list, one the same
        (test / code).mkdir(parents=True)
        Image.new("RGB", (8, 8), (30, 90, 200)).save(test / code / "0.jpg", format="JPEG")
    with pytest.warns(UserWarning, match="4 of 211"):
        iset, task = load_dataset(f"country211:{tmp_path}")
    with pytest.warns(UserWarning, match="4 of 211"):
        p_iset, paper = load_dataset(f"country211:{tmp_path}", protocol="paper")
    assert task.classnames == iset.classes == ["Democratic Republic of the Congo", "Ivory Coast", "Kyrgyzstan",
                                               "United States"]
    assert paper.classnames == p_iset.classes == ["DR Congo", "Cote d'Ivoire", "Kyrgyz Republic", "United States"]
    assert paper.templates == task.templates and p_iset.labels == iset.labels and paper.key != task.key
    clip = country211_names(clip=True)
    differ = [c for c, n in country211_names().items() if clip[c] != n]
    assert len(clip) == 211 and len(differ) == 17 and clip["BN"] == "Brunei Darussalam" and clip["VA"] == "Vatican"


def test_imagenet_r_folder_uses_200_class_index(tmp_path):
    classes = dict(imagenet_classes())
    assert len(classes) == 1000 and classes["n01440764"] == "tench"
    png(tmp_path / "n01443537" / "a.jpg")  # goldfish: class 0 of ImageNet-R
    png(tmp_path / "n02051845" / "b.jpg")  # pelican
    iset, task = load_dataset(f"imagenet-r:{tmp_path}")
    assert len(task.classnames) == 200 and task.classnames[0] == "goldfish"
    assert [task.classnames[l] for l in iset.labels] == ["goldfish", "pelican"]
    png(tmp_path / "n99999999" / "c.jpg")
    with pytest.raises(DataError, match="n99999999"):
        load_dataset(f"imagenet-r:{tmp_path}")


def test_fairface_csv(tmp_path):
    rows = [("val/1.jpg", "Male", "White"), ("val/2.jpg", "Female", "Black"), ("val/3.jpg", "Female", "White"),
            ("val/4.jpg", "Male", "Indian")]
    (tmp_path / "fairface_label_val.csv").write_text(
        "file,age,gender,race,service_test\n" + "".join(f"{f},20-29,{g},{r},True\n" for f, g, r in rows))
    for f, _, _ in rows[:3]:
        png(tmp_path / f)
    iset = load_fairface(tmp_path / "fairface_label_val.csv", attribute="race")
    assert iset.groups == ["White", "Black", "White"] and len(iset.skipped) == 1
    assert iset.attributes["gender"] == ["Male", "Female", "Female"] and "age" in iset.attributes
    with pytest.raises(DataError, match="'ethnicity' column"):
        load_fairface(tmp_path / "fairface_label_val.csv", attribute="ethnicity")


def test_clean_name():
    assert clean_name("aquarium_fish") == "aquarium fish" and clean_name(" sweet  pepper ") == "sweet pepper"


def test_the_paper_protocol_merges_east_and_southeast_asian(tmp_path):
    rows = [("a.jpg", "East Asian"), ("b.jpg", "Southeast Asian"), ("c.jpg", "White")]
    (tmp_path / "labels.csv").write_text("file,gender,race\n" + "".join(f"{f},Male,{r}\n" for f, r in rows))
    for f, _ in rows:
        png(tmp_path / f)
    standard, _ = load_dataset(f"fairface:{tmp_path / 'labels.csv'}")
    paper, _ = load_dataset(f"fairface:{tmp_path / 'labels.csv'}", protocol="paper")
    assert standard.attributes["race"] == ["East Asian", "Southeast Asian", "White"]
    assert paper.attributes["race"] == ["Asian", "Asian", "White"] and paper.groups == ["Asian", "Asian", "White"]
    with pytest.raises(DataError, match="Unknown protocol"):
        load_dataset(f"fairface:{tmp_path / 'labels.csv'}", protocol="exact")


def test_the_paper_protocol_uses_clips_80_imagenet_templates():
    from ccs_core.protocol import imagenet_templates

    t = imagenet_templates()
    assert len(t) == 80 and all(x.count("{}") == 1 for x in t) and "itap of a {}." in t


@pytest.mark.parametrize("spec, want", [
    ("toy", ("toy", "", "test")),
    ("toy:shape", ("toy", "shape", "test")),
    ("toy:split=val", ("toy", "", "val")),
    (" TOY:shape, split=train ", ("toy", "shape", "train")),
    ("toy-hard:background", ("toy-hard", "background", "test")),
    ("toy-bias", ("toy-bias", "", "test")),
    ("cifar-10:/data/c", ("cifar10", "/data/c", "test")),
    ("cifar10", ("cifar10", ".", "test")),
    ("fairface:/a.csv:/imgs", ("fairface", "/a.csv:/imgs", "test")),
    ("/some/folder", ("folder", "/some/folder", "test")),
    ("folder:/x", ("folder", "/x", "test")),
    ("weird:thing", ("folder", "weird:thing", "test")),
])
def test_one_spec_grammar(spec, want):
    from ccs_core.datasets import parse_spec

    p = parse_spec(spec)
    assert (p.kind, p.arg, p.split) == want


@pytest.mark.parametrize("spec, match", [
    ("toy:test", "'test' is a split of the toy world; choose it as toy:split=test"),
    ("toy:shape,colour", "one factor per spec"),
    ("toy:split=holdout", "the splits are train, val, test"),
    ("toy-hard:shape,n=4", "the only option is split=SPLIT"),
])
def test_a_misread_toy_spec_says_how_to_write_it(spec, match):
    from ccs_core.datasets import parse_spec

    with pytest.raises(DataError, match=match):
        parse_spec(spec)


def test_image_specs_go_through_the_same_parser():
    from ccs_core.analysis import resolve_images

    assert resolve_images("toy", n=4).name == resolve_images("toy:split=test", n=4).name
    val, hard = resolve_images("toy:split=val", n=4), resolve_images("toy-hard", n=4)
    assert len(val) == 4 and "val" in val.name and hard.name != resolve_images("toy", n=4).name
    with pytest.raises(DataError, match="not a set of images to analyse"):
        resolve_images("toy-bias")
    with pytest.raises(DataError, match="toy:split=val"):
        resolve_images("toy:val")
