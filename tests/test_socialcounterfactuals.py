"""SocialCounterfactuals: the CSV layout, the paper's K (12 race, 4 gender), MaxSkew with each occupation's
prompt ranking that occupation's images only, and the bias CLI end to end on a tiny synthetic set."""
from __future__ import annotations

import json
import math

import pytest
import torch
from PIL import Image

from ccs_core import bias
from ccs_core.analysis import bias_setup
from ccs_core.bias_sets import load_social_counterfactuals
from ccs_core.datasets import load_dataset, parse_spec
from ccs_core.errors import DataError

RACES = ("Asian", "Black", "Indian", "Latino", "Middle Eastern", "White")
GENDERS = ("Female", "Male")


def make_scf(folder, sets=None, columns=("race", "gender", "occupation", "counterfactual_set"), images=None):
    """A SocialCounterfactuals-layout CSV with ``sets[occupation]`` counterfactual sets (6 races x 2 genders)
    per occupation (default: doctor, nurse, pilot, 2 each), images as small PNGs under ``images`` (default:
    beside the CSV). -> the CSV's path"""
    folder.mkdir(parents=True, exist_ok=True)
    images = images or folder
    rows = []
    for occ, n_sets in (sets or {"doctor": 2, "nurse": 2, "pilot": 2}).items():
        for s in range(n_sets):
            for r, race in enumerate(RACES):
                for g, gender in enumerate(GENDERS):
                    name = f"img/{occ}_{s}_{r}_{g}.png"
                    (images / name).parent.mkdir(parents=True, exist_ok=True)
                    Image.new("RGB", (8, 8), (40 * r, 120 * g, 10 * s)).save(images / name)
                    value = {"race": race, "gender": gender, "occupation": occ, "counterfactual_set": f"{occ}-{s}"}
                    rows.append(",".join([name] + [value[c] for c in columns]))
    path = folder / "scf.csv"
    path.write_text(",".join(("file", *columns)) + "\n" + "\n".join(rows) + "\n", encoding="utf-8")
    return path


def test_the_spec_loads_groups_attributes_and_occupations(tmp_path):
    csv_path = make_scf(tmp_path)
    for spec in (f"socialcounterfactuals:{csv_path}", f"social-counterfactuals:{csv_path}", f"SCF:{csv_path}"):
        assert parse_spec(spec).kind == "socialcounterfactuals"
    data, task = load_dataset(f"scf:{csv_path}")
    assert task is None and len(data) == 3 * 2 * 12 and not data.skipped
    assert data.classes == sorted(RACES) and data.groups[:2] == ["Asian", "Asian"]
    assert set(data.attributes) == {"race", "gender"}  # occupation and set id are no group attribute
    assert data.attributes["gender"][:2] == ["Female", "Male"]
    assert data.subjects[:24] == ["doctor"] * 24 and data.subjects[-1] == "pilot"
    # images under another root: CSV:IMAGE_ROOT
    other = make_scf(tmp_path / "labels", {"nurse": 1}, images=tmp_path / "pictures")
    data, _ = load_dataset(f"socialcounterfactuals:{other}:{tmp_path / 'pictures'}")
    assert len(data) == 12 and data.paths[0].startswith(str(tmp_path / "pictures"))


def test_the_paper_defaults_and_per_occupation_pools(tmp_path):
    csv_path = make_scf(tmp_path)
    setup = bias_setup(f"socialcounterfactuals:{csv_path}")
    assert setup.k == {"race": 12, "gender": 4} == {a: bias.PAPER_K[("socialcounterfactuals", a)] for a in setup.k}
    assert list(setup.attributes) == ["race", "gender"] and len(setup.prompts) == 104
    assert len(setup.templates) == 4
    pools = dict(zip(setup.prompts, setup.pools))
    assert pools["doctor"] == list(range(0, 24)) and pools["pilot"] == list(range(48, 72))
    assert len(setup.skipped_prompts) == 101 and "doctor" not in setup.skipped_prompts
    assert bias_setup(f"scf:{csv_path}", k=6, attributes=["gender"]).k == {"gender": 6}  # --k: every attribute
    assert bias_setup(f"scf:{csv_path}", protocol="paper").k == {"race": 12, "gender": 4}
    flat = bias_setup(f"scf:{make_scf(tmp_path / 'flat', columns=('race', 'gender'))}")  # no occupation: all images
    assert flat.pools is None and flat.skipped_prompts == [] and flat.k == {"race": 12, "gender": 4}


def test_occupation_names_match_prompts_whatever_their_case():
    assert bias.occupation_pools(["police officer", "doctor", "chef"], ["Police_Officer", "DOCTOR ", "doctor"]) == \
        [[0], [1, 2], []]


def test_shares_are_those_of_the_prompts_pool():
    feats = torch.eye(6)                      # image i on axis i
    groups = ["a", "a", "a", "b", "b", "c"]   # shares over all: a 1/2, b 1/3, c 1/6
    prompt = torch.zeros(1, 6)
    prompt[0, [0, 3, 4]] = torch.tensor([0.9, 0.5, 0.4])
    pooled = bias.max_skew(feats, prompt, groups, k=1, pools=[[0, 3, 4]])  # pool a,b,b: a's share is 1/3
    assert pooled.per_prompt == pytest.approx([math.log(3)])
    assert bias.max_skew(feats, prompt, groups, k=1).per_prompt == pytest.approx([math.log(2)])  # over all


def crafted():
    """Two occupations of 3 counterfactual sets each (36 images: 6 per race, 3 per race x gender) and a prompt
    per occupation plus one with no images. Similarities are set directly (image i on axis i).
    -> (image feats [72, 72], prompt feats [3, 72], race [72], gender [72], pools)"""
    races, genders, occ = [], [], []
    for o in (0, 1):
        for s in range(3):
            for race in RACES:
                for gender in GENDERS:
                    races.append(race), genders.append(gender), occ.append((o, s))
    n = len(races)
    scores = torch.zeros(3, n)
    for i, (race, gender, (o, s)) in enumerate(zip(races, genders, occ)):
        if o == 0:  # prompt 0 (occupation 0): its White images first (women before men), then Black (but for
            # one man, below), then Asian
            scores[0, i] = {"White": 3.0 + (gender == "Female"), "Black": 2.0, "Asian": 1.0}.get(race, 0.0)
            if race == "Black" and gender == "Male" and s == 2:
                scores[0, i] = 0.5
            scores[1, i] = 9.0  # prompt 1 prefers occupation 0's images: must not matter, they are not its pool
        else:  # prompt 1 (occupation 1): exactly its first set on top, one image of every race x gender
            scores[1, i] = 1.0 if s == 0 else 0.0
            scores[0, i] = 9.0  # likewise for prompt 0
    pools = [[i for i, (o, _) in enumerate(occ) if o == 0], [i for i, (o, _) in enumerate(occ) if o == 1], []]
    return torch.eye(n) * 2.0, scores, races, genders, pools


def test_per_occupation_max_skew_by_hand():
    feats, prompts, races, genders, pools = crafted()
    race = bias.max_skew(feats, prompts, races, k=12, attribute="race", pools=pools)
    # prompt 0: top 12 of its 36 = 6 White + 5 Black + 1 Asian; White's share of the pool is 1/6 ->
    # ln((6/12)/(1/6)) = ln 3 (Black: ln 2.5). prompt 1: top 12 = one image of each race x gender -> 2 per race
    # at share 1/6 -> ln 1 = 0. prompt 2: no images, skipped
    assert race.per_prompt == pytest.approx([math.log(3), 0.0], abs=1e-9)
    assert race.worst_group[0] == "White" and race.skipped == [2]
    assert race.total == pytest.approx(math.log(3)) and race.mean == pytest.approx(math.log(3) / 2)
    gender = bias.max_skew(feats, prompts, genders, k=4, attribute="gender", pools=pools)
    # prompt 0: top 4 = the 3 White women, then a White man -> ln((3/4)/(1/2)) = ln 1.5
    assert gender.per_prompt[0] == pytest.approx(math.log(1.5)) and gender.worst_group[0] == "Female"
    # without pools each prompt would rank the other occupation's images (scored 9): a different answer
    assert bias.max_skew(feats, prompts[:2], races, k=12).per_prompt != pytest.approx(race.per_prompt)
    with pytest.raises(DataError, match="K <= the images prompt 0 ranks"):
        bias.max_skew(feats, prompts, races, k=40, attribute="race", pools=pools)
    with pytest.raises(DataError, match="every image pool is empty"):
        bias.max_skew(feats, prompts, races, k=4, pools=[[], [], []])


def test_bias_cli_end_to_end(tmp_path, monkeypatch, capsys):
    from ccs_core.cli import main

    monkeypatch.setenv("CCS_CACHE_DIR", str(tmp_path / "cache"))
    csv_path = make_scf(tmp_path)
    out = tmp_path / "bias.json"
    assert main(["bias", "--model", "toy", "--dataset", f"socialcounterfactuals:{csv_path}", "--strategy",
                 "heads:L3.H0,L3.H1", "--protocol", "paper", "--out", str(out)]) == 0
    err = capsys.readouterr().err
    assert "101 of 104 prompts have no image of their occupation" in err
    res = json.loads(out.read_text())
    assert res["k"] == {"race": 12, "gender": 4} and res["per_occupation"] and res["protocol"] == "paper"
    assert len(res["skipped_prompts"]) == 101
    rows = res["rows"]
    assert [(r["strategy"], r["attribute"], r["k"]) for r in rows] == [
        ("original", "race", 12), ("original", "gender", 4), ("custom", "race", 12), ("custom", "gender", 4)]
    assert all(r["n_prompts"] == 3 and r["n_prompts_skipped"] == 101 and r["n_images"] == 72 for r in rows)
    # MaxSkew's bounds on a pool of 2 sets: 0 <= per prompt <= ln(1 / (1/6)) for race, ln 2 for gender
    assert all(0 <= r["maxskew_sum"] <= 3 * math.log(6 if r["attribute"] == "race" else 2) + 1e-9 for r in rows)
    assert main(["bias", "--dataset", f"scf:{csv_path}", "--k", "6", "--attribute", "race", "--out", str(out)]) == 0
    assert json.loads(out.read_text())["k"] == {"race": 6}


@pytest.mark.parametrize("content,message", [
    ("file,occupation\nimg/a.png,doctor\n", "needs a 'race' and/or a 'gender' column"),
    ("file,race,gender\n", "header but no rows"),
    ("file,race,gender\nimg/a.png,White,Male\nimg/a.png,Black,Male\n", "lists img/a.png more than once"),
    ("file,race,gender,occupation\nimg/a.png,White,Male,\n", "line 2 has no 'occupation' value"),
    ("file,race,occupation,counterfactual_set\nimg/a.png,White,doctor,s1\nimg/b.png,Black,nurse,s1\n",
     "the counterfactual set 's1' has the occupations 'doctor' and 'nurse'"),
])
def test_bad_csvs_get_clear_messages(tmp_path, content, message):
    path = tmp_path / "scf.csv"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(DataError, match=message):
        load_social_counterfactuals(path)


def test_k_above_an_occupations_images_and_unmatched_occupations_are_refused(tmp_path):
    csv_path = make_scf(tmp_path, {"doctor": 2, "nurse": 1})
    setup = bias_setup(f"scf:{csv_path}")  # the nurse's one set of 12: K = 12 for race fits exactly
    assert setup.k == {"race": 12, "gender": 4}
    with pytest.raises(DataError, match="K = 13 for race, but the occupation 'nurse' has 12 images"):
        bias_setup(f"scf:{csv_path}", k=13, attributes=["race"])
    other = make_scf(tmp_path / "w", {"wizard": 1})
    with pytest.raises(DataError, match="must match the prompts"):
        bias_setup(f"scf:{other}")
