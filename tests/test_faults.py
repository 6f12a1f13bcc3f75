"""Bad input gets a clear one-line error, exit status 2, no traceback, and nothing written to the cache
(a sweep over the CLI's boundary; issue 14). Each case is a command line and the message it must give."""
from __future__ import annotations

import json
import tomllib

import numpy as np
import pytest
from PIL import Image

from ccs_core.cli import main
from tests.conftest import ROOT


@pytest.fixture
def files(tmp_path, monkeypatch):
    monkeypatch.setenv("CCS_CACHE_DIR", str(tmp_path / "cache"))
    (tmp_path / "a_file").write_text("x")
    (tmp_path / "list.json").write_text("[1, 2]")
    (tmp_path / "heads_str.json").write_text(json.dumps({"heads": "L1.H0"}))
    dup = {"model_key": "m", "model_name": "toy", "image_set": "x", "image_set_key": "x", "pool": "p",
           "pool_key": "p", "params": {}, "layers": [3], "n_heads": 16, "n_images": 4,
           "heads": [{"head": "L3.H0", "texts": list("abcde"), "indices": [0] * 5, "variances": [1.0] * 5,
                      "explained_share": 0.5}] * 2}
    (tmp_path / "dup.json").write_text(json.dumps(dup))
    (tmp_path / "empty.txt").write_text("# only a comment\n\n")
    (tmp_path / "latin1.txt").write_bytes("caf\xe9 owner\n".encode("latin-1"))
    (tmp_path / "notemplate.txt").write_text("a photo of a person\n")
    (tmp_path / "ccs_int.json").write_text(json.dumps({"heads": {"L3.H0": 5}}))
    (tmp_path / "ccs_word.json").write_text(json.dumps([{"head": "L3.H0", "ccs": "five"}]))
    (tmp_path / "ccs_th.json").write_text(json.dumps({"heads": {"L3.H0": {"ccs": 5}}, "thresholds": {"high_min": "abc"}}))
    (tmp_path / "ccs_latin1.json").write_bytes(b'[{"head": "L3.H0", "label": "caf\xe9"}]')
    (tmp_path / "ccs_other.json").write_text(json.dumps({"model_key": "another-model", "model_name": "ViT-B-32",
                                                         "heads": {"L3.H0": {"ccs": 5, "label": "colour"}}}))
    (tmp_path / "emptydir").mkdir()
    (tmp_path / "onlybad").mkdir()
    (tmp_path / "onlybad" / "x.png").write_text("not an image")
    (tmp_path / "bad.json").write_text("{ not json")
    (tmp_path / "pool1.txt").write_text("a photo\n")
    # the third sweep (stop 20): spans files whose shape or types are wrong
    one = dict(dup, heads=[dup["heads"][0]])
    bad_spans = {"sp_noheads": dict(one, heads=[]),
                 "sp_textsstr": dict(one, heads=[dict(one["heads"][0], texts="abcde")]),
                 "sp_badname": dict(one, heads=[dict(one["heads"][0], head="foo")]),
                 "sp_silentstr": dict(one, heads=[dict(one["heads"][0], silent="false")]),
                 "sp_layer99": dict(one, heads=[dict(one["heads"][0], head="L99.H0")]),
                 "sp_dupcase": dict(one, heads=[one["heads"][0], dict(one["heads"][0], head="l3.h0")]),
                 "sp_noname": dict(one, model_name=None),
                 "sp_nokey": {k: v for k, v in one.items() if k != "model_key"},
                 "spans_ok": one}
    for name, value in bad_spans.items():
        (tmp_path / f"{name}.json").write_text(json.dumps(value))
    (tmp_path / "ccs_99.json").write_text(json.dumps([{"head": "L3.H0", "ccs": 99}]))
    (tmp_path / "ccs_dup.json").write_text(json.dumps([{"head": "L3.H0", "ccs": 5}, {"head": "L3.H0", "ccs": 0}]))
    (tmp_path / "ccs_thneg.json").write_text(json.dumps({"heads": {"L3.H0": {"ccs": 5}}, "thresholds": {"high_min": -5}}))
    (tmp_path / "lab_hdr.csv").write_text("head,label\n")
    (tmp_path / "lab_absent.csv").write_text("head,label\nL9.H99,red\n")
    (tmp_path / "lab_dup.csv").write_text("head,label\nL3.H0,red\nL3.H0,blue\n")
    (tmp_path / "ff_short.csv").write_text("file,race,gender\na.jpg,White,Male\nb.jpg,,Female\n")
    # the fourth round (stop 21)
    (tmp_path / "prompts_dup.txt").write_text("a doctor\na nurse\na doctor\n")
    (tmp_path / "templates_dup.txt").write_text("a photo of a {}.\na photo of a {}.\n")
    (tmp_path / "cmap_space.txt").write_text("n01498041 stingray\n")
    (tmp_path / "onecls" / "cat").mkdir(parents=True)
    for i in range(3):
        Image.new("RGB", (8, 8), (40 * i, 0, 0)).save(tmp_path / "onecls" / "cat" / f"{i}.png")
    # the fifth round (stop 21, a 514-case sweep)
    for name, content in {"vjson": ("captions.json", "{bad"), "vlist": ("captions.json", '[{"id": "v1", "text": "x"}]'),
                          "vnum": ("captions.json", '{"v1": 5}'), "vcsv": ("captions.csv", "video_id,caption\nv1,a\nv2\n")
                          }.items():
        (tmp_path / name / "v1").mkdir(parents=True)
        Image.new("RGB", (8, 8)).save(tmp_path / name / "v1" / "0.png")
        (tmp_path / name / content[0]).write_text(content[1])
    (tmp_path / "vlatin" / "v1").mkdir(parents=True)
    (tmp_path / "vlatin" / "captions.txt").write_bytes("v1\tcaf\xe9\n".encode("latin-1"))
    (tmp_path / "ccs_keynum.json").write_text(json.dumps({"rows": [{"head": "L3.H0", "ccs": 5, "label": "colour"}],
                                                          "model_key": 5}))
    (tmp_path / "ccs_frac.json").write_text(json.dumps({"heads": {"L3.H0": {"ccs": 5}},
                                                        "thresholds": {"high_min": 4.7, "low_max": 1.2}}))
    (tmp_path / "ccs_labellist.json").write_text(json.dumps([{"head": "L3.H0", "ccs": 5, "label": ["colour"]}]))
    for cls in ("hot_dog", "hot dog"):
        (tmp_path / "dupcls" / cls).mkdir(parents=True)
        for i in range(2):
            Image.new("RGB", (8, 8), (9 * i, 50, 0)).save(tmp_path / "dupcls" / cls / f"{i}.png")
    (tmp_path / "same").mkdir()
    for i in range(8):
        Image.new("RGB", (32, 32), (9, 200, 30)).save(tmp_path / "same" / f"{i}.png")
    (tmp_path / "sp_allsilent.json").write_text(json.dumps(dict(one, heads=[dict(one["heads"][0], silent=True)])))
    (tmp_path / "sp_h99.json").write_text(json.dumps(dict(one, heads=[dict(one["heads"][0], head="L3.H99")])))
    (tmp_path / "sp_layersstr.json").write_text(json.dumps(dict(one, layers="3")))
    (tmp_path / "ff_white.csv").write_text("file,race,gender\na.jpg,White,Male\nb.jpg,White,Female\n")
    for name in ("a.jpg", "b.jpg"):
        Image.new("RGB", (8, 8), (90, 9, 9)).save(tmp_path / name)
    (tmp_path / "ccs_ok.json").write_text(json.dumps([{"head": "L3.H0", "ccs": 5, "label": "colour"}]))
    (tmp_path / "ff_dupcol.csv").write_text("file,race,race,gender\na.jpg,White,X,Male\nb.jpg,Black,X,Female\n")
    (tmp_path / "prompts_case.txt").write_text("a doctor\nA  Doctor\n")
    (tmp_path / "cmap_twice.txt").write_text("n01498041\tfish\nn01498041\tshark\n")
    (tmp_path / "ina" / "n01498041").mkdir(parents=True)
    Image.new("RGB", (8, 8)).save(tmp_path / "ina" / "n01498041" / "0.png")
    (tmp_path / "cif" / "cifar-10-batches-py").mkdir(parents=True)
    (tmp_path / "cif" / "cifar-10-batches-py" / "test_batch").write_bytes(b"not a pickle")
    # SocialCounterfactuals (issue 13): a.jpg and b.jpg as two images of one occupation
    (tmp_path / "scf_nogroups.csv").write_text("file,occupation\na.jpg,doctor\nb.jpg,doctor\n")
    (tmp_path / "scf_wizard.csv").write_text("file,race,gender,occupation\na.jpg,White,Male,wizard\nb.jpg,Black,Female,wizard\n")
    (tmp_path / "scf_small.csv").write_text("file,race,gender,occupation\na.jpg,White,Male,doctor\nb.jpg,Black,Female,Doctor\n")
    # reproduce (issue 13's bad-input sweep): out-dirs whose report names are taken by the wrong kind of thing
    (tmp_path / "r_charts").mkdir()
    (tmp_path / "r_charts" / "charts").write_text("not a folder")
    (tmp_path / "r_json" / "report.json").mkdir(parents=True)
    return tmp_path


CASES = [
    ("spans-out-is-dir", ["spans", "--out", "{tmp}"], "is a directory"),
    ("spans-out-under-file", ["spans", "--out", "{tmp}/a_file/x.json"], "which is a file"),
    ("spans-too-many", ["spans", "--spans", "70", "--n-images", "80", "--out", "{tmp}/s.json"], "at most 64"),
    ("score-spans-list", ["score", "--spans", "{tmp}/list.json", "--out", "{tmp}/o.json"], "Not a spans result"),
    ("score-heads-string", ["score", "--spans", "{tmp}/heads_str.json", "--out", "{tmp}/o.json"], "Not a spans result"),
    ("score-duplicate-heads", ["score", "--spans", "{tmp}/dup.json", "--out", "{tmp}/o.json"], "more than once"),
    ("prune-batch-zero", ["prune-eval", "--batch-size", "0", "--out", "{tmp}/p.json"], "--batch-size must be at least 1"),
    ("prune-batch-negative", ["prune-eval", "--batch-size", "-1", "--out", "{tmp}/p.json"], "at least 1"),
    ("prune-seeds-zero", ["prune-eval", "--seeds", "0", "--out", "{tmp}/p.json"], "--seeds must be at least 1"),
    ("bias-prompts-missing", ["bias", "--prompts", "{tmp}/nope.txt", "--out", "{tmp}/b.json"], "does not exist"),
    ("bias-prompts-dir", ["bias", "--prompts", "{tmp}", "--out", "{tmp}/b.json"], "is not a file"),
    ("bias-prompts-empty", ["bias", "--prompts", "{tmp}/empty.txt", "--out", "{tmp}/b.json"], "has no entries"),
    ("bias-prompts-latin1", ["bias", "--prompts", "{tmp}/latin1.txt", "--out", "{tmp}/b.json"], "not UTF-8"),
    ("bias-templates-without-slot", ["bias", "--templates", "{tmp}/notemplate.txt", "--out", "{tmp}/b.json"],
     "exactly one {}"),
    ("bias-k-too-large", ["bias", "--k", "900", "--n-images", "40", "--out", "{tmp}/b.json"], "between 1 and 40"),
    ("bias-k-zero", ["bias", "--k", "0", "--out", "{tmp}/b.json"], "K = 0"),
    ("toy-with-a-tag", ["prune-eval", "--pretrained", "openai", "--out", "{tmp}/p.json"], "own bundled weights"),
    ("ccs-head-not-object", ["prune-eval", "--ccs", "{tmp}/ccs_int.json", "--out", "{tmp}/p.json"], "expected an object"),
    ("ccs-word", ["prune-eval", "--ccs", "{tmp}/ccs_word.json", "--out", "{tmp}/p.json"], "a whole number"),
    ("ccs-threshold-word", ["prune-eval", "--ccs", "{tmp}/ccs_th.json", "--out", "{tmp}/p.json"], "thresholds must be"),
    ("ccs-not-utf8", ["prune-eval", "--ccs", "{tmp}/ccs_latin1.json", "--out", "{tmp}/p.json"], "Cannot read the CCS file"),
    ("ccs-from-another-model", ["prune-eval", "--ccs", "{tmp}/ccs_other.json", "--out", "{tmp}/p.json"],
     "scored on another model"),
    ("ccs-missing", ["bias", "--ccs", "{tmp}/nope.json", "--out", "{tmp}/b.json"], "Cannot read the CCS file"),
    ("device-unknown", ["prune-eval", "--device", "foo", "--out", "{tmp}/p.json"], "Unknown device 'foo'"),
    ("device-cuda-missing", ["prune-eval", "--device", "cuda", "--out", "{tmp}/p.json"], "no usable CUDA GPU"),
    ("toy-max-per-class", ["prune-eval", "--max-per-class", "3", "--out", "{tmp}/p.json"], "sized with --n-images"),
    # the second sweep (stop 19): models, images, pools, span parameters, files, datasets, strategies
    ("model-unknown", ["spans", "--model", "nope-model", "--out", "{tmp}/s.json"], "Unknown model architecture"),
    ("images-missing", ["spans", "--images", "{tmp}/missing", "--out", "{tmp}/s.json"], "does not exist"),
    ("images-empty-folder", ["spans", "--images", "{tmp}/emptydir", "--out", "{tmp}/s.json"], "No readable images"),
    ("images-all-unreadable", ["spans", "--images", "{tmp}/onlybad", "--out", "{tmp}/s.json"], "1 unreadable"),
    ("pool-missing", ["spans", "--pool", "{tmp}/missing.txt", "--out", "{tmp}/s.json"], "does not exist"),
    ("pool-only-comments", ["spans", "--pool", "{tmp}/empty.txt", "--out", "{tmp}/s.json"], "has no descriptions"),
    ("pool-latin1", ["spans", "--pool", "{tmp}/latin1.txt", "--out", "{tmp}/s.json"], "not valid UTF-8"),
    ("pool-one-text", ["spans", "--pool", "{tmp}/pool1.txt", "--out", "{tmp}/s.json"], "needs at least 2"),
    ("layers-zero", ["spans", "--layers", "0", "--out", "{tmp}/s.json"], "between 1 and 5"),
    ("layers-too-many", ["spans", "--layers", "99", "--out", "{tmp}/s.json"], "between 1 and 5"),
    ("spans-zero", ["spans", "--spans", "0", "--out", "{tmp}/s.json"], "at least 1 span"),
    ("rank-below-spans", ["spans", "--rank", "2", "--out", "{tmp}/s.json"], "rank of at least"),
    ("spans-n-images-zero", ["spans", "--n-images", "0", "--out", "{tmp}/s.json"], "--n-images must be between 1 and 100,000"),
    ("spans-fewer-images-than-spans", ["spans", "--n-images", "3", "--out", "{tmp}/s.json"], "needs at least 5"),
    ("checkpoint-missing", ["spans", "--model", "ViT-B-32", "--pretrained", "{tmp}/missing.pt", "--out",
                            "{tmp}/s.json"], "does not exist"),
    ("checkpoint-not-weights", ["spans", "--model", "ViT-B-32", "--pretrained", "{tmp}/bad.json", "--out",
                                "{tmp}/s.json"], "Could not load the checkpoint"),
    ("score-spans-missing", ["score", "--spans", "{tmp}/missing.json", "--out", "{tmp}/o.json"], "Cannot read spans"),
    ("score-spans-not-json", ["score", "--spans", "{tmp}/bad.json", "--out", "{tmp}/o.json"], "Cannot read spans"),
    ("score-spans-not-utf8", ["score", "--spans", "{tmp}/latin1.txt", "--out", "{tmp}/o.json"], "Cannot read spans"),
    ("dataset-unknown", ["prune-eval", "--dataset", "nope:x", "--out", "{tmp}/p.json"], "Unknown dataset"),
    ("dataset-toy-factor-unknown", ["prune-eval", "--dataset", "toy:nofactor", "--out", "{tmp}/p.json"],
     "Unknown toy factor"),
    ("dataset-cifar-not-there", ["prune-eval", "--dataset", "cifar10:{tmp}/missing", "--out", "{tmp}/p.json"],
     "was not found under"),
    ("dataset-empty-folder", ["prune-eval", "--dataset", "{tmp}/emptydir", "--out", "{tmp}/p.json"],
     "No readable images"),
    ("strategy-unknown", ["prune-eval", "--strategy", "nope", "--out", "{tmp}/p.json"], "Unknown strategy 'nope'"),
    ("strategy-needs-ccs", ["prune-eval", "--strategy", "concept:shape", "--out", "{tmp}/p.json"],
     "needs CCS scores"),
    ("prune-n-images-zero", ["prune-eval", "--n-images", "0", "--out", "{tmp}/p.json"], "--n-images must be between 1 and 100,000"),
    ("ccs-not-json", ["prune-eval", "--ccs", "{tmp}/bad.json", "--out", "{tmp}/p.json"], "Cannot read the CCS file"),
    ("class-map-where-unused", ["prune-eval", "--class-map", "{tmp}/missing.txt", "--out", "{tmp}/p.json"],
     "applies to imagenet-a:DIR and imagenet-r:DIR only"),
    ("fairface-csv-missing", ["bias", "--dataset", "fairface:{tmp}/missing.csv", "--out", "{tmp}/b.json"],
     "not found"),
    ("bias-set-without-groups", ["bias", "--dataset", "toy:colour", "--out", "{tmp}/b.json"],
     "has no groups to measure bias over"),
    ("bias-n-images-zero", ["bias", "--n-images", "0", "--out", "{tmp}/b.json"], "--n-images must be between 1 and 100,000"),
    ("bias-templates-missing", ["bias", "--templates", "{tmp}/missing.txt", "--out", "{tmp}/b.json"],
     "does not exist"),
    # the third sweep (stop 20, an independent 299-case sweep): spans and CCS files, labels, judges,
    # outputs that are inputs, dataset specs
    ("spans-file-no-heads", ["score", "--spans", "{tmp}/sp_noheads.json", "--out", "{tmp}/o.json"], "has no heads"),
    ("spans-file-texts-string", ["score", "--spans", "{tmp}/sp_textsstr.json", "--out", "{tmp}/o.json"],
     "'texts' must be a list of non-empty strings"),
    ("spans-file-bad-head-name", ["score", "--spans", "{tmp}/sp_badname.json", "--out", "{tmp}/o.json"],
     "names a head 'foo'"),
    ("spans-file-silent-string", ["score", "--spans", "{tmp}/sp_silentstr.json", "--out", "{tmp}/o.json"],
     "'silent' must be true or false"),
    ("spans-file-head-outside-layers", ["score", "--spans", "{tmp}/sp_layer99.json", "--out", "{tmp}/o.json"],
     "outside the result's analysed layers [3]"),
    ("spans-file-same-head-two-spellings", ["score", "--spans", "{tmp}/sp_dupcase.json", "--out", "{tmp}/o.json"],
     "L3.H0 more than once"),
    ("spans-file-model-name-null", ["score", "--spans", "{tmp}/sp_noname.json", "--out", "{tmp}/o.json"],
     "model_name must be text"),
    ("spans-file-no-model-key", ["score", "--spans", "{tmp}/sp_nokey.json", "--out", "{tmp}/o.json"],
     "it has no model_key"),
    ("ccs-above-five", ["prune-eval", "--ccs", "{tmp}/ccs_99.json", "--out", "{tmp}/p.json"], "a whole number 0..5"),
    ("ccs-head-twice", ["prune-eval", "--ccs", "{tmp}/ccs_dup.json", "--out", "{tmp}/p.json"],
     "L3.H0 appear more than once"),
    ("ccs-threshold-negative", ["prune-eval", "--ccs", "{tmp}/ccs_thneg.json", "--out", "{tmp}/p.json"],
     "thresholds need 0 <= low_max < high_min <= 5"),
    ("labels-header-only", ["score", "--spans", "{tmp}/spans_ok.json", "--labels", "{tmp}/lab_hdr.csv", "--out",
                            "{tmp}/o.json"], "has no rows of labels"),
    ("labels-unknown-head", ["score", "--spans", "{tmp}/spans_ok.json", "--labels", "{tmp}/lab_absent.csv", "--out",
                             "{tmp}/o.json"], "L9.H99 are not in the spans file"),
    ("labels-head-twice", ["score", "--spans", "{tmp}/spans_ok.json", "--labels", "{tmp}/lab_dup.csv", "--out",
                           "{tmp}/o.json"], "has two labels"),
    ("judges-none-named", ["score", "--spans", "{tmp}/spans_ok.json", "--judges", ",,", "--out", "{tmp}/o.json"],
     "names no judge"),
    ("allow-missing-unknown-judge", ["score", "--spans", "{tmp}/spans_ok.json", "--judges", "toy",
                                     "--allow-missing-judges", "bogus", "--out", "{tmp}/o.json"],
     "which --judges does not ask for"),
    ("judge-timeout-negative", ["score", "--spans", "{tmp}/spans_ok.json", "--judges", "openai", "--timeout", "-1",
                                "--out", "{tmp}/o.json"], "it must be at least 0.1"),
    ("score-out-is-the-spans-file", ["score", "--spans", "{tmp}/spans_ok.json", "--out", "{tmp}/spans_ok.json"],
     "is also an input of this command"),
    ("spans-out-is-the-pool", ["spans", "--pool", "{tmp}/pool1.txt", "--out", "{tmp}/pool1.txt"],
     "is also an input of this command"),
    ("prune-out-is-the-ccs-file", ["prune-eval", "--ccs", "{tmp}/ccs_99.json", "--out", "{tmp}/ccs_99.json"],
     "is also an input of this command"),
    ("dataset-two-splits", ["prune-eval", "--dataset", "toy:split=val,split=test", "--out", "{tmp}/p.json"],
     "one split per spec"),
    ("dataset-videos-with-factor", ["prune-eval", "--dataset", "toy-videos:shape", "--out", "{tmp}/p.json"],
     "toy-videos takes no factor or split"),
    ("dataset-kind-without-path", ["prune-eval", "--dataset", "imagenet-a:", "--out", "{tmp}/p.json"],
     "names no path: write imagenet-a:PATH"),
    ("dataset-folder-missing", ["prune-eval", "--dataset", "{tmp}/nope", "--out", "{tmp}/p.json"],
     "/nope does not exist"),
    ("images-dataset-spec", ["spans", "--images", "cifar10:{tmp}", "--out", "{tmp}/s.json"],
     "not a set of images to analyse"),
    ("bias-on-videos", ["bias", "--dataset", "toy-videos", "--out", "{tmp}/b.json"], "is a video set"),
    ("fairface-row-without-group", ["bias", "--dataset", "fairface:{tmp}/ff_short.csv", "--out", "{tmp}/b.json"],
     "line 3 has no 'race' value: every row needs 'race' and 'file'"),
    # the fourth round (stop 21): inputs read before the model loads, counts, repeats, class maps
    ("ccs-read-before-the-model", ["prune-eval", "--model", "nope-model", "--ccs", "{tmp}/bad.json", "--out",
                                   "{tmp}/p.json"], "Cannot read the CCS file"),
    ("dataset-read-before-the-model", ["bias", "--model", "nope-model", "--prompts", "{tmp}/empty.txt", "--out",
                                       "{tmp}/b.json"], "has no entries"),
    ("n-images-huge", ["spans", "--n-images", "1000000000", "--out", "{tmp}/s.json"], "between 1 and 100,000"),
    ("n-images-with-a-folder", ["spans", "--images", "{tmp}/onecls", "--n-images", "10", "--out", "{tmp}/s.json"],
     "sizes the toy world's sets"),
    ("n-images-with-a-dataset", ["prune-eval", "--dataset", "{tmp}/onecls", "--n-images", "10", "--out",
                                 "{tmp}/p.json"], "--max-per-class"),
    ("one-class-folder", ["prune-eval", "--dataset", "{tmp}/onecls", "--out", "{tmp}/p.json"],
     "would be 1.0 whatever the model does"),
    ("bias-prompts-repeated", ["bias", "--prompts", "{tmp}/prompts_dup.txt", "--out", "{tmp}/b.json"],
     "'a doctor' appears more than once"),
    ("bias-templates-repeated", ["bias", "--templates", "{tmp}/templates_dup.txt", "--out", "{tmp}/b.json"],
     "more than once"),
    ("ray-unreachable", ["spans", "--ray", "127.0.0.1:1", "--out", "{tmp}/s.json"], "No Ray cluster answers at"),
    ("workers-negative", ["spans", "--workers", "-1", "--out", "{tmp}/s.json"], "--workers must be 0"),
    # the fifth round (stop 21): a 514-case sweep's findings
    ("captions-not-json", ["prune-eval", "--dataset", "videos:{tmp}/vjson", "--out", "{tmp}/p.json"], "is not valid JSON"),
    ("captions-wrong-keys", ["prune-eval", "--dataset", "videos:{tmp}/vlist", "--out", "{tmp}/p.json"],
     "should be a JSON object {video_id: caption"),
    ("captions-number", ["prune-eval", "--dataset", "videos:{tmp}/vnum", "--out", "{tmp}/p.json"],
     "gives video 'v1' the caption 5"),
    ("captions-csv-short-row", ["prune-eval", "--dataset", "videos:{tmp}/vcsv", "--out", "{tmp}/p.json"],
     "line 3: every row needs a video_id and a caption"),
    ("captions-latin1", ["prune-eval", "--dataset", "videos:{tmp}/vlatin", "--out", "{tmp}/p.json"], "is not UTF-8"),
    ("ccs-model-key-number", ["prune-eval", "--ccs", "{tmp}/ccs_keynum.json", "--out", "{tmp}/p.json"],
     "'model_key' must be the text key"),
    ("ccs-fractional-thresholds", ["prune-eval", "--ccs", "{tmp}/ccs_frac.json", "--out", "{tmp}/p.json"],
     "thresholds must be whole numbers"),
    ("ccs-label-not-text", ["prune-eval", "--ccs", "{tmp}/ccs_labellist.json", "--out", "{tmp}/p.json"],
     "a label is text"),
    ("seeds-huge", ["prune-eval", "--seeds", "100000", "--out", "{tmp}/p.json"], "--seeds must be at most 1000"),
    ("out-is-a-device", ["spans", "--out", "/dev/null"], "is not a regular file"),
    ("out-inside-the-images", ["spans", "--images", "{tmp}/same", "--out", "{tmp}/same/0.png"],
     "a folder this command reads"),
    ("class-names-twice", ["prune-eval", "--dataset", "{tmp}/dupcls", "--out", "{tmp}/p.json"],
     "has the class 'hot dog' twice"),
    ("identical-images", ["spans", "--images", "{tmp}/same", "--out", "{tmp}/s.json"], "copies of one another"),
    ("every-head-silent", ["score", "--spans", "{tmp}/sp_allsilent.json", "--out", "{tmp}/o.json"],
     "is marked silent"),
    ("head-beyond-n-heads", ["score", "--spans", "{tmp}/sp_h99.json", "--out", "{tmp}/o.json"], "16 heads per layer"),
    ("spans-layers-not-a-list", ["score", "--spans", "{tmp}/sp_layersstr.json", "--out", "{tmp}/o.json"],
     "expected a list of layer numbers"),
    ("one-group-only", ["bias", "--dataset", "fairface:{tmp}/ff_white.csv", "--attribute", "race", "--out",
                        "{tmp}/b.json"], "MaxSkew compares groups"),
    ("fairface-column-twice", ["bias", "--dataset", "fairface:{tmp}/ff_dupcol.csv", "--out", "{tmp}/b.json"],
     "has the column 'race' more than once"),
    ("prompts-differ-by-case", ["bias", "--prompts", "{tmp}/prompts_case.txt", "--out", "{tmp}/b.json"],
     "case and spaces do not count"),
    ("strategy-with-an-argument", ["prune-eval", "--ccs", "{tmp}/ccs_ok.json", "--strategy", "high:5", "--out",
                                   "{tmp}/p.json"], "high takes no argument"),
    ("toy-videos-too-many", ["prune-eval", "--dataset", "toy-videos", "--n-images", "200", "--out", "{tmp}/p.json"],
     "at most 64 clips"),
    ("videos-max-per-class", ["prune-eval", "--dataset", "videos:{tmp}/vjson", "--max-per-class", "2", "--out",
                              "{tmp}/p.json"], "a video set has no classes"),
    ("images-empty", ["spans", "--images", "", "--out", "{tmp}/s.json"], "No images named"),
    ("images-toy-with-a-factor", ["spans", "--images", "toy:colour", "--out", "{tmp}/s.json"],
     "a factor ('colour') chooses a zero-shot task"),
    ("images-toy-comma", ["spans", "--images", "toy,split=train", "--out", "{tmp}/s.json"],
     "neither a folder nor a toy image spec"),
    ("cifar-damaged", ["prune-eval", "--dataset", "cifar10:{tmp}/cif", "--out", "{tmp}/p.json"], "look damaged or incomplete"),
    # the verification sweep (stop 21)
    ("class-map-wnid-twice", ["prune-eval", "--dataset", "imagenet-a:{tmp}/ina", "--class-map", "{tmp}/cmap_twice.txt",
                              "--out", "{tmp}/p.json"], "names n01498041 twice"),
    ("ray-http-url", ["spans", "--ray", "http://127.0.0.1:8265", "--out", "{tmp}/s.json"], "not an http(s) URL"),
    ("toy-checkpoint-of-the-user-missing", ["spans", "--pretrained", "{tmp}/nope.pt", "--out", "{tmp}/s.json"],
     "toyworld.train --out DIR"),
    ("class-map-without-tab", ["prune-eval", "--dataset", "imagenet-a:{tmp}/emptydir", "--class-map",
                               "{tmp}/cmap_space.txt", "--out", "{tmp}/p.json"], "a WordNet id, a TAB"),
    # SocialCounterfactuals (issue 13)
    ("scf-csv-missing", ["bias", "--dataset", "socialcounterfactuals:{tmp}/missing.csv", "--out", "{tmp}/b.json"],
     "SocialCounterfactuals label file"),
    ("scf-without-race-or-gender", ["bias", "--dataset", "scf:{tmp}/scf_nogroups.csv", "--out", "{tmp}/b.json"],
     "needs a 'race' and/or a 'gender' column"),
    ("scf-occupations-match-no-prompt", ["bias", "--dataset", "scf:{tmp}/scf_wizard.csv", "--out", "{tmp}/b.json"],
     "the 'occupation' values must match the prompts (case-insensitive"),
    ("scf-k-above-an-occupations-images", ["bias", "--dataset", "socialcounterfactuals:{tmp}/scf_small.csv",
                                           "--out", "{tmp}/b.json"], "K = 12 for race, but the occupation 'doctor' has 2 images"),
    ("scf-csv-is-a-folder", ["bias", "--dataset", "scf:{tmp}/emptydir", "--out", "{tmp}/b.json"],
     "emptydir is a folder, not a CSV"),
    # reproduce (issue 13's bad-input sweep): every input checked before the first step
    ("reproduce-root-missing", ["reproduce", "--cifar10", "{tmp}/missing", "--out-dir", "{tmp}/r"],
     "missing does not exist. Give the root torchvision's dataset class reads"),
    ("reproduce-root-is-a-file", ["reproduce", "--pets", "{tmp}/a_file", "--out-dir", "{tmp}/r"],
     "a_file is a file, not a folder"),
    ("reproduce-csv-is-a-folder", ["reproduce", "--fairface", "{tmp}/emptydir", "--out-dir", "{tmp}/r"],
     "emptydir is a folder, not a CSV file"),
    ("reproduce-flag-empty", ["reproduce", "--cifar10", "", "--out-dir", "{tmp}/r"], "--cifar10 is empty"),
    ("reproduce-dataset-neither-spec-nor-folder", ["reproduce", "--dataset", "nope:x", "--out-dir", "{tmp}/r"],
     "is neither a dataset spec nor an existing folder"),
    ("reproduce-out-dir-empty", ["reproduce", "--out-dir", ""], "would write every step's JSON and the report into "
                                                                 "the current folder"),
    ("reproduce-out-dir-a-file", ["reproduce", "--out-dir", "{tmp}/a_file"], "a_file is a file; give a folder"),
    ("reproduce-out-dir-a-dataset", ["reproduce", "--videos", "{tmp}/vjson", "--out-dir", "{tmp}/vjson"],
     "a folder this command reads; writing there would change (or replace a file of) its input. Choose a --out-dir"),
    ("reproduce-out-dir-in-the-images", ["reproduce", "--images", "{tmp}/same", "--out-dir", "{tmp}/same/run"],
     "Choose a --out-dir outside it"),
    ("reproduce-charts-a-file", ["reproduce", "--out-dir", "{tmp}/r_charts"], "reproduce writes its charts in that folder"),
    ("reproduce-report-json-a-folder", ["reproduce", "--out-dir", "{tmp}/r_json"],
     "is a folder (or not a regular file), but reproduce writes its report there"),
    ("reproduce-n-images-huge", ["reproduce", "--n-images", "1000000000", "--out-dir", "{tmp}/r"], "between 1 and 100,000"),
    ("reproduce-workers-negative", ["reproduce", "--workers", "-1", "--out-dir", "{tmp}/r"], "--workers must be 0"),
    ("reproduce-images-missing", ["reproduce", "--images", "{tmp}/missing", "--out-dir", "{tmp}/r"],
     "/missing does not exist; fix the path (nothing has run yet)"),
    ("reproduce-pool-missing", ["reproduce", "--pool", "{tmp}/missing.txt", "--out-dir", "{tmp}/r"],
     "/missing.txt does not exist; fix the path"),
]


@pytest.mark.parametrize("name,argv,message", CASES, ids=[c[0] for c in CASES])
def test_bad_input_is_one_clear_line_and_caches_nothing(files, capsys, name, argv, message):
    code = main([a.replace("{tmp}", str(files)) for a in argv])
    err = capsys.readouterr().err
    assert code == 2, (code, err[-500:])
    assert message in err and "Traceback" not in err, err[-500:]
    # reproduce refused before its first step: no run folder made, nothing written beside a dataset
    assert not [p for p in (files / "r", files / "same" / "run", files / "vjson" / "steps.json") if p.exists()]
    cache = files / "cache"
    assert not cache.exists() or not [p for p in cache.rglob("*") if p.is_file() and p.suffix in (".npz", ".json")
                                      and "model" not in str(p)], list(cache.rglob("*"))


def test_16_bit_images_are_scaled_not_clipped(tmp_path):
    from ccs_core.data import load_image_folder

    ramp = (np.linspace(0, 65535, 64 * 64).reshape(64, 64)).astype(np.uint16)
    Image.fromarray(ramp).save(tmp_path / "deep.png")
    im = np.asarray(load_image_folder(tmp_path).image(0))
    assert im.shape == (64, 64, 3) and 100 < im.mean() < 155 and (im == 255).mean() < 0.01


def test_a_checkpoint_with_a_nan_weight_is_refused_naming_the_layer(tiny):
    import copy

    import torch

    from ccs_core.decompose import decompose
    from ccs_core.errors import DataError
    from ccs_core.models import from_model

    model = copy.deepcopy(tiny.model)
    with torch.no_grad():
        model.visual.transformer.resblocks[4].attn.out_proj.weight[0, 0] = float("nan")
    broken = from_model(model, tiny.preprocess, tiny.tokenizer, name="nan", key="nan")
    with pytest.raises(DataError, match=r"non-finite values \(NaN or inf\) from layer L4 on"):
        decompose(broken, torch.randn(2, 3, 32, 32), n_layers=3)


def test_the_app_listens_on_this_machine_only_by_default():
    config = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())
    assert config["server"]["address"] == "127.0.0.1"
    assert "--server.address 0.0.0.0" in (ROOT / "scripts" / "app.sh").read_text()  # only with --lan


def test_an_unexpected_error_is_one_line_with_exit_1_and_a_traceback_only_with_debug(files, capsys, monkeypatch):
    import ccs_core.cli as cli

    def boom(args):
        raise ZeroDivisionError("division by zero in a helper")

    monkeypatch.setattr(cli, "cmd_spans", boom)
    monkeypatch.setattr(cli, "add_spans", lambda sub: sub.add_parser("spans").set_defaults(func=boom))
    assert main(["spans"]) == 1
    err = capsys.readouterr().err
    assert "unexpected ZeroDivisionError" in err and "--debug" in err and "Traceback" not in err
    with pytest.raises(ZeroDivisionError):
        main(["--debug", "spans"])


def test_a_cache_entry_of_the_wrong_shape_is_a_miss_not_a_wrong_result(tmp_path, tiny):
    import torch

    from ccs_core.decompose import VERSION, decompose_image_set
    from ccs_core.store import Store, cache_key
    from ccs_core.toyworld.tasks import toy_image_set

    store = Store(tmp_path / "cache")
    images = toy_image_set("test", n=6, seed=0)
    good = decompose_image_set(tiny, images, n_layers=2, store=store)
    key = cache_key(model=tiny.key, images=images.key, n_layers=2, version=VERSION)
    folder = tmp_path / "cache" / "arrays" / "decomposition" / key
    shapes = {"by_head": (32, 6, 64), "rest": (6, 64)}
    for name, damage in (("rest", lambda f: np.save(f, np.zeros((3, 4), dtype=np.float32))),  # another shape
                         ("by_head", lambda f: f.write_bytes(f.read_bytes()[:1000]))):       # truncated
        damage(folder / f"{name}.npy")
        assert store.open_mapped("decomposition", key, shapes) is None
        again = decompose_image_set(tiny, images, n_layers=2, store=store)
        assert torch.allclose(again.heads, good.heads)
        assert store.open_mapped("decomposition", key, shapes) is not None  # replaced
    assert not [p for p in folder.parent.iterdir() if p.name.startswith(".tmp")]


def test_images_beside_class_folders_are_listed_as_skipped(tmp_path):
    from ccs_core.data import load_image_folder

    for cls in ("cat", "dog"):
        (tmp_path / cls).mkdir()
        Image.new("RGB", (8, 8)).save(tmp_path / cls / "a.png")
    Image.new("RGB", (8, 8)).save(tmp_path / "stray.png")
    images = load_image_folder(tmp_path)
    assert len(images) == 2 and images.classes == ["cat", "dog"]
    assert [(p.endswith("stray.png"), "outside the class sub-folders" in r) for p, r in images.skipped] == [(True, True)]


@pytest.mark.parametrize("content,message", [
    ("\ufefffile,race,gender\nimg/1.jpg,White,Male\n", "No readable images"),  # BOM accepted: the file column is found
    ("file,race\n", "header but no rows"),
    ("name,race\na.jpg,White\n", "its header has: 'name', 'race'"),
])
def test_fairface_csvs_get_clear_messages(tmp_path, content, message):
    from ccs_core.datasets import load_fairface
    from ccs_core.errors import DataError

    path = tmp_path / "labels.csv"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(DataError, match=message):
        load_fairface(path)
    path.write_bytes("file,race\ncaf\xe9.jpg,White\n".encode("latin-1"))
    with pytest.raises(DataError, match="not UTF-8"):
        load_fairface(path)


def test_a_concept_whose_heads_are_below_the_bar_says_so():
    from ccs_core.errors import HeadSpecError
    from ccs_core.strategies import CCSTable, strategy_configs

    table = CCSTable([{"head": "L3.H0", "ccs": 4, "label": "shape"}, {"head": "L3.H1", "ccs": 5, "label": "colour"}])
    with pytest.raises(HeadSpecError, match=r"1 head\(s\) are labelled 'shape', but none has CCS >= 99 \(the highest is 4\)"):
        strategy_configs("concept:shape", table, 4, 16, concept_min_ccs=99)


def test_lan_mode_limits_paths_to_the_data_roots_and_ignores_the_servers_keys(tmp_path, monkeypatch):
    from app_lib import resources as rs
    from ccs_core.errors import DataError
    from ccs_core.judges.settings import JudgeSettings, api_key

    monkeypatch.setenv("OPENAI_API_KEY", "sk-server-owner")
    rs.check_path("/etc", "image folder")  # local mode: any path
    assert api_key("openai", JudgeSettings()) == "sk-server-owner"
    monkeypatch.setenv("CCS_LAN", "1")
    monkeypatch.setenv("CCS_DATA_ROOTS", str(tmp_path))
    (tmp_path / "imgs").mkdir()
    rs.check_path(str(tmp_path / "imgs"), "image folder")
    with pytest.raises(DataError, match="outside its data roots"):
        rs.check_path("/etc", "image folder")
    with pytest.raises(DataError, match="outside its data roots"):
        rs.check_path(str(tmp_path / ".." / "elsewhere"), "pool file")
    assert api_key("openai", JudgeSettings()) is None  # the server's key is not a visitor's
    assert api_key("openai", JudgeSettings(api_keys={"OPENAI_API_KEY": "sk-typed"})) == "sk-typed"


def test_a_stored_spans_entry_of_the_wrong_shape_is_recomputed_and_a_hit_names_the_current_pool(tmp_path):
    from ccs_core.analysis import SpanParams, run_spans, spans_key
    from ccs_core.models import load_model
    from ccs_core.store import Store
    from ccs_core.textpool import load_pool
    from ccs_core.toyworld.tasks import toy_image_set

    store, loaded, images = Store(tmp_path / "c"), load_model("toy"), toy_image_set("test", 8, 0)
    (tmp_path / "a.txt").write_text("a red circle\na blue square\na photo of a dog\n")
    (tmp_path / "b.txt").write_text("a red circle\na blue square\na photo of a dog\n")  # same texts
    params = SpanParams(n_layers=1, n_spans=2, rank=8)
    pool = load_pool(str(tmp_path / "a.txt"))
    first = run_spans(loaded, images, pool, params, store)
    store.set("spans", spans_key(loaded, images, pool, params), {"heads": []})  # planted: not a spans result
    again = run_spans(loaded, images, load_pool(str(tmp_path / "a.txt")), params, store)
    assert again.to_json() == first.to_json()  # a miss: recomputed, and the entry is valid again
    other = run_spans(loaded, images, load_pool(str(tmp_path / "b.txt")), params, store)
    assert other.pool != first.pool and other.pool_key == first.pool_key


def test_exit_3_says_why_each_head_is_incomplete():
    from ccs_core.cli_score import incomplete_reasons
    from ccs_core.scores import HeadScore, ScoreResult

    res = ScoreResult(n_spans=2, labeller={}, judges=[{"name": "toy"}], heads={
        "L0.H0": HeadScore(spans=["a", "b"], label="red", verdicts={}),
        "L0.H1": HeadScore(spans=["a", "b"], label="red", verdicts={"toy": {
            "fits": [None, None], "status": "unsupported", "problem": "names no toy-world factor"}})},
        errors=[{"head": "L0.H0", "stage": "judge", "agent": "openai", "error": "Connection refused"}])
    res.summarise(["toy"])
    failed, unusable = incomplete_reasons(res, [])
    assert "1 request(s) failed (first: L0.H0, openai: Connection refused)" in failed and "re-run" in failed
    assert "unsupported: names no toy-world factor" in unusable and "a re-run reuses those answers" in unusable
    assert incomplete_reasons(res, ["gemini"])[-1].startswith("judge(s) gemini unavailable")


def test_a_fairface_csv_whose_path_has_a_colon(tmp_path):
    from ccs_core.datasets import fairface_paths

    folder = tmp_path / "run:2"
    folder.mkdir()
    (folder / "labels.csv").write_text("file,race\n")
    csv_path = str(folder / "labels.csv")
    assert fairface_paths(csv_path) == (csv_path, None)
    assert fairface_paths(f"{csv_path}:{tmp_path}/imgs") == (csv_path, f"{tmp_path}/imgs")
    assert fairface_paths(f"{tmp_path}/missing.csv:{tmp_path}") == (f"{tmp_path}/missing.csv", str(tmp_path))


def test_no_available_judge_exits_3_and_writes_nothing(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("CCS_CACHE_DIR", str(tmp_path / "cache"))
    for key in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "GEMINI_API_KEY", "GOOGLE_API_KEY"):
        monkeypatch.delenv(key, raising=False)
    spans = {"model_key": "m", "model_name": "toy", "image_set": "x", "image_set_key": "x", "pool": "p",
             "pool_key": "p", "params": {}, "layers": [3], "n_heads": 16, "n_images": 4,
             "heads": [{"head": "L3.H0", "texts": list("abcde"), "indices": [0] * 5, "variances": [1.0] * 5,
                        "explained_share": 0.5}]}
    (tmp_path / "s.json").write_text(json.dumps(spans))
    code = main(["score", "--spans", str(tmp_path / "s.json"), "--labeller", "toy", "--judges", "openai",
                 "--out", str(tmp_path / "o.json")])
    err = capsys.readouterr().err
    assert code == 3 and "no requested judge is available" in err and "OPENAI_API_KEY" in err, err
    assert not (tmp_path / "o.json").exists()


def test_library_calls_with_bad_arguments_get_the_projects_errors():
    """The fifth sweep's library cases: a wrong type or value is a CCSError that says what to give."""
    import torch

    from ccs_core.analysis import SpanParams, bias_setup, check_span_params
    from ccs_core.bias import max_skew
    from ccs_core.datasets import load_dataset
    from ccs_core.errors import CCSError
    from ccs_core.strategies import CCSTable, strategy_configs
    from ccs_core.textpool import TextPool
    from ccs_core.validate import top_k

    table = CCSTable([{"head": "L3.H0", "ccs": 5, "label": "colour"}])
    cases = [
        (lambda: bias_setup("toy-bias", n=40, prompts="a doctor"), "a list of non-empty strings"),
        (lambda: bias_setup("toy-bias", n=40, prompts=["a", "A"]), "appears more than once"),
        (lambda: bias_setup("toy-bias", n=40, prompts=[]), "No prompts given"),
        (lambda: top_k(2.7, 10), "whole number"),
        (lambda: strategy_configs("random", table, 4, 16, n_seeds=0), "1..1000 seeds"),
        (lambda: check_span_params(SpanParams(rank=80.5), 4, 100, 100), "rank must be a whole number"),
        (lambda: TextPool.from_texts("p", ["a", "b", "c"], tags=[{"x"}]), "one set of tags per text"),
        (lambda: CCSTable([{"ccs": 1}]), "need a 'head' field"),
        (lambda: load_dataset("toy-videos", n=-5), "between 1 and"),
        (lambda: max_skew(torch.randn(4, 8), torch.randn(2, 8), ["a"] * 4, 2), "at least two"),
    ]
    for call, fragment in cases:
        with pytest.raises(CCSError, match=fragment.replace(".", r"\.")):
            call()
    assert bias_setup("toy-bias", n=40, attributes="background").attributes.keys() == {"background"}


def test_inputs_that_now_work_as_a_user_expects(tmp_path, monkeypatch, capsys):
    """Class maps with a TAB, FairFace values with stray spaces, folder:DIR, '-q' after the command,
    ' toy ', .jfif files, broken links and a class folder of unsupported files listed, --out through a
    symlink, and two folders of same-named, same-dated files keyed apart."""
    import os

    from ccs_core.data import load_image_folder
    from ccs_core.datasets import load_fairface

    monkeypatch.setenv("CCS_CACHE_DIR", str(tmp_path / "cache"))
    ff = tmp_path / "ff"
    ff.mkdir()
    for name in ("a.jpg", "b.jpg", "c.jpg"):
        Image.new("RGB", (8, 8), (len(name), 9, 9)).save(ff / name)
    (ff / "l.csv").write_text("file,race\na.jpg,White\nb.jpg,White \nc.jpg,Black\n")
    assert sorted(set(load_fairface(ff / "l.csv").groups)) == ["Black", "White"]
    imgs = tmp_path / "imgs"
    (imgs / "cat").mkdir(parents=True)
    (imgs / "odd").mkdir()
    for i in range(6):
        Image.new("RGB", (16, 16), (30 * i, 60, 9)).save(imgs / "cat" / f"{i}.jfif", format="JPEG")
    (imgs / "odd" / "x.heic").write_bytes(b"\0" * 10)
    os.symlink(tmp_path / "gone.png", imgs / "cat" / "link.png")
    folder = load_image_folder(imgs)
    assert len(folder) == 6
    reasons = dict(folder.skipped)
    assert "target is missing" in reasons[str(imgs / "cat" / "link.png")]
    assert "no files with a supported image extension" in reasons[str(imgs / "odd")]
    twin = tmp_path / "twin"
    (twin / "cat").mkdir(parents=True)
    for p in sorted((imgs / "cat").glob("*.jfif")):
        Image.new("RGB", (16, 16), (1, 2, 3)).save(twin / "cat" / p.name, format="JPEG")
        os.utime(twin / "cat" / p.name, ns=(p.stat().st_mtime_ns, p.stat().st_mtime_ns))
    assert load_image_folder(twin).key != folder.key
    target = tmp_path / "real.json"
    target.write_text("{}")
    (tmp_path / "link.json").symlink_to(target)
    assert main(["spans", "--model", " toy ", "--images", f"folder:{imgs / 'cat'}", "-q", "--out",
                 str(tmp_path / "link.json")]) == 0
    assert (tmp_path / "link.json").is_symlink() and json.loads(target.read_text())["pool"].startswith("toy")
    cmap = tmp_path / "map.txt"
    cmap.write_text("n01498041\tstingray\n")
    ina = tmp_path / "ina" / "n01498041"
    ina.mkdir(parents=True)
    Image.new("RGB", (8, 8)).save(ina / "0.png")
    from ccs_core.datasets import load_imagenet_variant

    _, task = load_imagenet_variant("imagenet-a", tmp_path / "ina", class_map=cmap)
    assert "stingray" in task.classnames


def test_the_verification_sweeps_cases(tmp_path, monkeypatch, capsys):
    """Config files with a BOM read; a temperature above 2, a config that is a pipe and a blank model are
    refused; a password in a base URL is masked; an unused --compatible judge is noted; a pipe in a cached
    decomposition is a miss; a pipe among the images is listed; an image edited with its mtime put back
    is seen (ctime); the app's folder task merges 'hot_dog' and 'hot dog' into one refused name."""
    import os
    import time

    from app_lib.experiments import resolve_task
    from ccs_core.data import load_image_folder
    from ccs_core.errors import CCSError
    from ccs_core.judges.config import load_settings

    monkeypatch.setenv("CCS_CACHE_DIR", str(tmp_path / "cache"))
    bom = tmp_path / "bom.toml"
    bom.write_bytes("\ufeff[judges]\ntimeout = 5\n".encode("utf-8"))
    assert load_settings(files=[bom]).timeout == 5
    hot = tmp_path / "hot.toml"
    hot.write_text("[judges]\ntemperature = 9\n")
    with pytest.raises(CCSError, match="at most 2.0"):
        load_settings(files=[hot])
    with pytest.raises(CCSError, match="is blank"):
        load_settings({"openai_model": "   "})
    fifo = tmp_path / "c.toml"
    os.mkfifo(fifo)
    monkeypatch.setenv("CCS_CONFIG", str(fifo))
    assert main(["score", "--spans", str(tmp_path / "x.json"), "--show-settings"]) == 2
    assert "is not a regular file" in capsys.readouterr().err
    monkeypatch.delenv("CCS_CONFIG")
    assert main(["score", "--spans", str(tmp_path / "x.json"), "--base-url", "openai=http://user:pw123@127.0.0.1:1/v1",
                 "--show-settings"]) == 0
    shown = capsys.readouterr().out
    assert "pw123" not in shown and "user:…@127.0.0.1" in shown
    spans = tmp_path / "s.json"
    assert main(["-q", "spans", "--n-images", "32", "--out", str(spans)]) == 0
    assert main(["-q", "score", "--spans", str(spans), "--compatible", "local=http://127.0.0.1:9/v1,m",
                 "--out", str(tmp_path / "o.json")]) == 0
    assert "--compatible defines local, which neither --judges nor --labeller uses" in capsys.readouterr().err
    entry = next((tmp_path / "cache" / "arrays" / "decomposition").iterdir())
    (entry / "rest.npy").unlink()
    os.mkfifo(entry / "rest.npy")
    assert main(["-q", "spans", "--n-images", "32", "--spans", "4", "--out", str(spans)]) == 0  # no hang: a miss
    imgs = tmp_path / "imgs"
    imgs.mkdir()
    for i in range(6):
        Image.new("RGB", (16, 16), (40 * i, 9, 9)).save(imgs / f"{i}.bmp")
    os.mkfifo(imgs / "pipe.bmp")
    first = load_image_folder(imgs)
    assert dict(first.skipped)[str(imgs / "pipe.bmp")].startswith("not a regular file")
    st = (imgs / "3.bmp").stat()
    time.sleep(0.01)
    Image.new("RGB", (16, 16), (1, 2, 3)).save(imgs / "3.bmp")  # same size, then the old mtime put back
    os.utime(imgs / "3.bmp", ns=(st.st_atime_ns, st.st_mtime_ns))
    assert load_image_folder(imgs).key != first.key
    dup = tmp_path / "dup"
    for cls in ("cat", "hot dog", "hot_dog"):
        (dup / cls).mkdir(parents=True)
        for i in range(2):
            Image.new("RGB", (8, 8), (i, 9, 9)).save(dup / cls / f"{i}.png")
    with pytest.raises(CCSError, match="has the class 'hot dog' twice"):
        resolve_task(str(dup), "", 0, load_image_folder(dup))
