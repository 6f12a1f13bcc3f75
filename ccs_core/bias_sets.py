"""The bias image sets read from a label CSV: FairFace and SocialCounterfactuals (specs
``fairface:CSV[:IMAGE_ROOT]`` and ``socialcounterfactuals:CSV[:IMAGE_ROOT]``; ``datasets.CSV_LOADERS`` maps the kinds to them).

Both are a UTF-8 CSV with one row per image: a ``file`` column (the image's path relative to IMAGE_ROOT,
by default the CSV's folder) and group-attribute columns. One reader (``read_label_csv``) checks the file
and its rows for both; what is wrong is a ``DataError`` saying how to fix it.
"""
from __future__ import annotations

import csv
from collections import Counter
from pathlib import Path
from typing import Sequence

from .data import ImageSet, file_image_set
from .errors import DataError

SCF_ATTRIBUTES = ("race", "gender")              # the group attributes the paper measures
SCF_SUBJECT, SCF_SET = "occupation", "counterfactual_set"  # optional columns
NOT_ATTRIBUTES = ("file", "service_test", SCF_SUBJECT, SCF_SET)  # columns that are no group attribute


def read_label_csv(csv_path: "str | Path", what: str, example: str) -> tuple[list[dict[str, str]], list[str]]:
    """(rows with stripped values, header) of a UTF-8 label CSV. ``what`` names the file in messages
    ("FairFace label file"); ``example`` says what the CSV should be when it is missing."""
    csv_path = Path(csv_path).expanduser()
    if csv_path.is_dir():
        raise DataError(f"{what} {csv_path} is a folder, not a CSV: give {example}, then ':' and the image folder "
                        "if its 'file' paths are relative to another folder than the CSV's.")
    if not csv_path.is_file():
        raise DataError(f"{what} {csv_path} not found: give {example} and the folder its 'file' paths are "
                        "relative to.")
    try:
        with open(csv_path, newline="", encoding="utf-8-sig") as f:  # -sig: a BOM (Excel) is not a column
            reader = csv.DictReader(f)
            rows, cols = list(reader), list(reader.fieldnames or [])
    except UnicodeDecodeError as err:
        raise DataError(f"{what} {csv_path} is not UTF-8 text (byte {err.start}); save it as UTF-8 "
                        "(Excel: 'CSV UTF-8').") from err
    except (OSError, csv.Error) as err:
        raise DataError(f"Cannot read the {what} {csv_path}: {err}.") from err
    twice = sorted(c for c, n in Counter(cols).items() if n > 1)
    if twice:
        raise DataError(f"{csv_path} has the column {twice[0]!r} more than once; one column per attribute "
                        "(the later one would silently win).")
    return [{k: v.strip() if isinstance(v, str) else v for k, v in r.items()} for r in rows], cols  # 'White ' == 'White'


def check_rows(csv_path: "str | Path", rows: list[dict[str, str]], cols: list[str], required: Sequence[str]) -> None:
    """Every ``required`` column in the header, at least one row, a value in every required column of
    every row, and no image listed twice."""
    missing = [c for c in required if c not in cols]
    if missing:
        raise DataError(f"{csv_path} needs {' and '.join(f'a {c!r} column' for c in required)} (its header has: "
                        f"{', '.join(repr(c) for c in cols) or 'nothing'}).")
    if not rows:
        raise DataError(f"{csv_path} has a header but no rows: one row per image is needed.")
    for line, r in enumerate(rows, 2):
        empty = [c for c in required if r.get(c) is None or not str(r.get(c)).strip()]
        if empty:
            raise DataError(f"{csv_path} line {line} has no {' or '.join(map(repr, empty))} value: every row "
                            f"needs {' and '.join(map(repr, required))}.")
    twice = Counter(r["file"] for r in rows)
    dups = sorted(f for f, n in twice.items() if n > 1)
    if dups:
        raise DataError(f"{csv_path} lists {dups[0]} more than once ({len(dups)} file(s) twice); one row per image.")


def _image_set(name: str, csv_path: Path, image_root: "str | Path | None", rows: list[dict[str, str]],
               cols: list[str], attribute: str, max_per_group: int | None) -> ImageSet:
    """The readable images of ``rows``: groups/labels = ``attribute``, ``.attributes`` = every attribute
    column, ``.subjects`` = the occupation column when there is one (all aligned with ``.paths``)."""
    root = Path(image_root).expanduser() if image_root else csv_path.parent
    classes = sorted({r[attribute] for r in rows})
    index = {c: i for i, c in enumerate(classes)}
    iset = file_image_set(name, root, [root / r["file"] for r in rows], [index[r[attribute]] for r in rows],
                          classes, groups=[r[attribute] for r in rows], max_per_class=max_per_group)
    by_path = {str(root / r["file"]): r for r in rows}
    kept = [by_path[p] for p in iset.paths]
    iset.attributes = {a: [r[a] for r in kept] for a in cols if a not in NOT_ATTRIBUTES}
    if SCF_SUBJECT in cols:
        iset.subjects = [r[SCF_SUBJECT] for r in kept]
    return iset


def load_fairface(csv_path: "str | Path", image_root: "str | Path | None" = None, attribute: str = "race",
                  max_per_group: int | None = None) -> ImageSet:
    """FairFace layout: a CSV with a ``file`` column (path relative to ``image_root``, default the CSV's
    folder) and attribute columns (race, gender, age). ``groups`` = ``attribute``; ``.attributes`` holds
    every attribute column; labels/classes = ``attribute`` as classes."""
    csv_path = Path(csv_path).expanduser()
    rows, cols = read_label_csv(csv_path, "FairFace label file",
                                "the CSV (e.g. fairface_label_val.csv with columns file,age,gender,race)")
    check_rows(csv_path, rows, cols, (attribute, "file"))
    return _image_set(f"fairface-{csv_path.stem}", csv_path, image_root, rows, cols, attribute, max_per_group)


def load_social_counterfactuals(csv_path: "str | Path", image_root: "str | Path | None" = None,
                                max_per_group: int | None = None) -> ImageSet:
    """SocialCounterfactuals (Howard et al., CVPR 2024) as a CSV: ``file`` (the image's path relative to
    ``image_root``, default the CSV's folder), ``race`` and/or ``gender``, and optionally ``occupation``
    (the subject of the image's counterfactual set, e.g. "doctor") and ``counterfactual_set`` (its id).
    Every other column is an attribute too; a column present must be filled in on every row.

    The public release (the Hugging Face dataset Intel/SocialCounterfactuals) ships parquet files with the
    images and their attribute columns: write the images out as files and the attribute columns to this CSV,
    mapping its race / gender / subject columns to ``race`` / ``gender`` / ``occupation`` and its set id to
    ``counterfactual_set``. Since a column present needs a value on every row, keep the rows of the sets that
    vary race and gender (or write a CSV with only the ``race`` or only the ``gender`` column for the sets that
    vary that one).

    ``groups`` = race (gender without a race column); ``.attributes`` = race, gender and the other columns;
    ``.subjects`` = the occupation of every image (``None`` without the column). MaxSkew then takes each
    occupation prompt's top-K among that occupation's images, with group shares over them (our reading of
    the paper's protocol: ``bias`` module docstring, ``bias.occupation_pools``); K defaults to the paper's 12
    for race and 4 for gender (``bias.PAPER_K``)."""
    csv_path = Path(csv_path).expanduser()
    rows, cols = read_label_csv(csv_path, "SocialCounterfactuals label file",
                                "a CSV with columns file,race,gender[,occupation,counterfactual_set] (one row per "
                                "image exported from the dataset's parquet files)")
    groups = [a for a in SCF_ATTRIBUTES if a in cols]
    if not groups:
        raise DataError(f"{csv_path} needs a 'race' and/or a 'gender' column: MaxSkew measures the skew of "
                        f"those groups (its header has: {', '.join(repr(c) for c in cols) or 'nothing'}). Name "
                        "the dataset's race and gender columns so.")
    check_rows(csv_path, rows, cols, ("file", *groups, *(c for c in (SCF_SUBJECT, SCF_SET) if c in cols)))
    if SCF_SUBJECT in cols and SCF_SET in cols:
        subject: dict[str, str] = {}
        for line, r in enumerate(rows, 2):
            first = subject.setdefault(r[SCF_SET], r[SCF_SUBJECT])
            if first.casefold() != r[SCF_SUBJECT].casefold():
                raise DataError(f"{csv_path} line {line}: the counterfactual set {r[SCF_SET]!r} has the occupations "
                                f"{first!r} and {r[SCF_SUBJECT]!r}; a set's images differ only in race or gender, "
                                "so they share one occupation. Fix the occupation or the set id.")
    return _image_set(f"socialcounterfactuals-{csv_path.stem}", csv_path, image_root, rows, cols, groups[0],
                      max_per_group)


def csv_paths(arg: str) -> tuple[str, str | None]:
    """``CSV[:IMAGE_ROOT]`` -> (CSV, IMAGE_ROOT or None); a colon inside an existing CSV's path is
    part of the path (the first split whose left side is a file wins)."""
    cuts = [i for i, c in enumerate(arg) if c == ":"]
    if Path(arg).expanduser().is_file() or not cuts:
        return arg, None
    for i in cuts:
        if Path(arg[:i]).expanduser().is_file():
            return arg[:i], arg[i + 1:] or None
    return arg[:cuts[0]], arg[cuts[0] + 1:] or None
