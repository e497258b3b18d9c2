"""Class labels as the user wrote them, for tables and images alike: ``data.label_map``
(rename or merge classes) and the check that stops on classes that look like one class
written differently ('Diabetes', 'diabetes ', 'DIABETES', 'Diabetis'); the same test on the
categories of text feature columns warns instead of stopping."""

from __future__ import annotations

import json
import re
import shlex
from typing import Any, Optional

import numpy as np
import pandas as pd
import yaml

from deepfit.errors import DataError, did_you_mean

# A one-letter difference is taken for a typo only when the rarer spelling has at most this
# share of the rows of the commoner one (a typo is rare; 'house' and 'mouse' of CIFAR-100
# are not), and only between words of at least TYPO_MIN_LETTERS letters.
TYPO_SHARE = 1 / 3
TYPO_MIN_LETTERS = 5


def class_key(value: Any) -> str:
    """Match 1, 1.0 and '1' read back from JSON or a CSV as the same class."""
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value))
    if isinstance(value, (int, float, np.number)) and float(value).is_integer():
        return str(int(value))
    return str(value)


def renamed(classes: list, label_map: dict, where: Optional[str] = None,
            display: Optional[dict] = None) -> list:
    """Each of ``classes`` after ``data.label_map`` ({old: new}), in the same order.

    A key names a class by its value (1, 1.0 and '1' alike) or by its display name
    (``display``: {class: name}, a source that names integer classes). A new name that is
    already a class becomes that class (``{2: 1}`` merges class 2 into class 1). With
    ``where`` (e.g. "target column 'y'"), training's check: a key that names no class, a
    new name YAML read as true/false (``{pos: yes}``) and a map that leaves one class are
    errors.
    """
    display = display or {}
    if where is not None:  # training; a run's own map is not checked again at prediction
        _no_yaml_booleans(classes, label_map)
    by_key = {class_key(c): c for c in classes}
    by_key.update({class_key(display[c]): c for c in classes if c in display})
    mapping = {}
    for old, new in (label_map or {}).items():
        cls = by_key.get(class_key(old))
        if new is None or (isinstance(new, float) and np.isnan(new)):
            raise DataError(f"data.label_map gives class '{old}' no new name; write "
                            f"{{{old}: NEW_NAME}}")
        if cls is None:
            if where is not None:
                names = [display.get(c, c) for c in classes]
                hint = (" (YAML reads yes/no/on/off as true/false: quote the name, 'yes')"
                        if isinstance(old, bool) else did_you_mean(old, map(str, names)))
                raise DataError(f"data.label_map names class '{old}', which {where} does not "
                                f"have{hint}; classes are {names}")
            continue
        mapping[class_key(cls)] = by_key.get(class_key(new), new)
    out = [mapping.get(class_key(c), c) for c in classes]
    if where is not None and len(classes) > 1 and len({class_key(c) for c in out}) == 1:
        raise DataError(f"data.label_map merges all {len(classes)} classes of {where} into one, "
                        f"'{display.get(out[0], out[0])}'; a model needs at least two classes: "
                        "map only the spellings of one class onto another")
    return out


def _no_yaml_booleans(classes: list, label_map: Optional[dict]) -> None:
    """Stop on a new name that YAML read as true/false (``{pos: yes}``) when the classes are
    not true/false themselves: the classes would silently become 'False' and 'True'."""
    if all(isinstance(c, (bool, np.bool_)) for c in classes):
        return
    for old, new in (label_map or {}).items():
        if isinstance(new, (bool, np.bool_)):
            word = "yes" if new else "no"
            raise DataError(f"data.label_map gives class '{old}' the new name {new}, a true/false "
                            "value: YAML reads yes/no/on/off/true/false as true/false; quote "
                            f"the new name, e.g. {override({old: word})}")


def relabel(y: pd.Series, mapping: dict) -> pd.Series:
    """Target values with ``mapping`` ({class_key(old): new}) applied."""
    if not mapping:
        return y
    return y.map(lambda v: mapping.get(class_key(v), v))


def lookalike_groups(counts: dict[str, int]) -> list[tuple[list[str], bool]]:
    """Groups of class names that look like one class written differently, each with
    whether a typo (not only case, spaces, '_' or '-') links them. ``counts``: {name: rows}
    in the order the names should be shown."""
    names = [n for n in counts if isinstance(n, str)]
    parent = {n: n for n in names}

    def root(n: str) -> str:
        while parent[n] != n:
            n = parent[n]
        return n

    by_form: dict[str, str] = {}
    for n in names:  # same letters once case, spaces, '_' and inner '-' are set aside
        parent[n] = root(by_form.setdefault(_form(n), n))
    total: dict[str, int] = {}
    for n in names:
        total[root(n)] = total.get(root(n), 0) + counts[n]
    typo = set()
    for a, b in _typo_candidates(list(total)):
        small, large = sorted((total[a], total[b]))
        if root(a) != root(b) and small <= TYPO_SHARE * large and _one_typo_apart(a, b):
            typo.add(root(a))
            parent[root(b)] = root(a)
    groups: dict[str, list[str]] = {}
    for n in names:
        groups.setdefault(root(n), []).append(n)
    return [(g, any(m in typo for m in g)) for g in groups.values() if len(g) > 1]


def check_lookalikes(counts: dict[str, int], what: str, unit: str,
                     label_map: Optional[dict]) -> list[str]:
    """Stop on classes that look like one class written differently, with the
    ``data.label_map`` that merges them. When the user gave a ``data.label_map`` they have
    looked at the labels: the groups left are returned as report notes instead."""
    groups = _commonest_first(counts)
    if not groups:
        return []
    shown = _shown(groups, counts, unit)
    if label_map:
        return [f"{what}: classes {shown} look like one class written differently; "
                "kept apart because data.label_map was given."]
    merge = {}
    for group, _ in groups:
        merge.update({n: group[0] for n in group[1:]})
    typo = next((g for g, t in groups if t), None)
    keep_apart = (f"; if they are different classes, give any data.label_map (e.g. "
                  f"{override({typo[0]: typo[0]})}) to go on" if typo else "")
    raise DataError(f"{what} has classes that look like one class written differently: "
                    f"{shown}; merge them with {override(merge)}{keep_apart}")


def feature_lookalikes(frame: pd.DataFrame, columns: list[str], origin: str
                       ) -> list[tuple[str, str]]:
    """For each text feature column of ``frame`` (the training rows) whose categories look
    like one category written differently ('red', 'RED', 'Red '), by the test the target's
    classes get: a console line naming the spellings, and a report note with their rows
    (the console line has no counts, so the folds of ``deepfit cv`` say it once). Each
    spelling becomes its own one-hot input. Not a stop, unlike the target (a feature's
    spellings may mean something) and not merged here: the lines say how to clean it."""
    lines = []
    for col in columns:
        counts = class_counts(frame[col].dropna().astype(str))
        groups = _commonest_first(counts)
        if groups:
            drop = shlex.quote(f"data.drop_columns=[{_scalar(col)}]")
            head = (f"{origin}: column '{col}' has categories that look like one category "
                    "written differently: ")
            tail = ("; each spelling is a separate one-hot input (deepfit does not merge "
                    "them): if they are one category, write them alike in the file, or leave "
                    f"the column out with {drop}")
            lines.append((head + _shown(groups, None, "") + tail,
                          head + _shown(groups, counts, "training rows") + tail + "."))
    return lines


def _commonest_first(counts: dict) -> list[tuple[list[str], bool]]:
    """``lookalike_groups`` with each group's commonest spelling first."""
    return [(sorted(g, key=lambda n: -counts[n]), typo) for g, typo in lookalike_groups(counts)]


def _shown(groups: list[tuple[list[str], bool]], counts: Optional[dict], unit: str) -> str:
    """The first three groups with their counts: "'red' (40 rows), 'RED' (3); ..."; only
    the names without ``counts``."""
    shown = "; ".join(", ".join(f"'{n}'" + ("" if counts is None else
                                            f" ({counts[n]}{f' {unit}' if i == 0 else ''})")
                                for i, n in enumerate(g)) for g, _ in groups[:3])
    return shown + (f" and {len(groups) - 3} more group(s)" if len(groups) > 3 else "")


def override(mapping: dict) -> str:
    """``data.label_map=...`` as a command-line argument (quoted for the shell when needed)
    whose value parses as a YAML flow mapping."""
    flow = ", ".join(f"{_scalar(k)}: {_scalar(v)}" for k, v in mapping.items())
    return shlex.quote(f"data.label_map={{{flow}}}")


def _scalar(name: Any) -> str:
    """``name`` as YAML reads it back in a flow mapping: plain, else double-quoted."""
    try:
        plain = yaml.safe_load(f"{{{name}: {name}}}") == {name: name}
    except yaml.YAMLError:
        plain = False
    return str(name) if plain else json.dumps(name, ensure_ascii=False)


def _form(name: str) -> str:
    """Lower case without spaces and '_', and without '-' between letters or digits: 'HER2-'
    and 'HER2+' stay apart, 'no-tumour' and 'No Tumour' do not."""
    text = re.sub(r"[\s_]+", "", name.casefold())
    return re.sub(r"(?<=\w)-(?=\w)", "", text)


def _tokens(name: str) -> list[str]:
    """Runs of letters, runs of digits and single other signs; spaces, '_' and '-' split."""
    return re.findall(r"[^\W\d_]+|\d+|[^\w\s-]", name.casefold())


def _typo_candidates(names: list[str]) -> set[tuple[str, str]]:
    """Pairs whose letters may be one edit apart: they share a one-deletion variant."""
    seen: dict[str, list[str]] = {}
    for n in names:
        s = "".join(_tokens(n))
        if len(s) >= TYPO_MIN_LETTERS:
            for v in {s} | {s[:i] + s[i + 1:] for i in range(len(s))}:
                seen.setdefault(v, []).append(n)
    return {(a, b) for group in seen.values() for i, a in enumerate(group)
            for b in group[i + 1:] if a != b}


def _one_typo_apart(a: str, b: str) -> bool:
    """One letter wrong, missing, extra or swapped in one word of 5+ letters; never a
    difference of digits or of short words ('T1'/'T2', 'class_1'/'class_2', 'Type I'/'Type
    II', 'G1'/'G2', 'ALL'/'AML', 'cat'/'cats')."""
    ta, tb = _tokens(a), _tokens(b)
    if len(ta) == len(tb):
        diff = [(x, y) for x, y in zip(ta, tb) if x != y]
        if len(diff) != 1:
            return False
        x, y = diff[0]
    else:  # a word split or joined as well: compare the letters as one
        x, y = "".join(ta), "".join(tb)
    return (x.isalpha() and y.isalpha() and min(len(x), len(y)) >= TYPO_MIN_LETTERS
            and _one_edit(x, y))


def _one_edit(x: str, y: str) -> bool:
    """One substitution, insertion, deletion or swap of neighbours."""
    if abs(len(x) - len(y)) > 1 or x == y:
        return False
    i = 0
    while i < min(len(x), len(y)) and x[i] == y[i]:
        i += 1
    if len(x) == len(y):
        return x[i + 1:] == y[i + 1:] or (x[i + 2:] == y[i + 2:] and x[i:i + 2] == y[i:i + 2][::-1])
    longer, shorter = (x, y) if len(x) > len(y) else (y, x)
    return longer[i + 1:] == shorter[i:]


def map_target(y: pd.Series, label_map: dict, where: str,
               display: Optional[dict] = None) -> tuple[pd.Series, dict]:
    """A class target with ``data.label_map`` applied, and the map resolved to its values
    ({class_key(old): new}, what ``relabel`` applies to new data)."""
    classes = pd.unique(y).tolist()
    new = renamed(classes, label_map, where, display)
    mapping = {class_key(c): n for c, n in zip(classes, new) if n is not c}
    return relabel(y, mapping), mapping


def class_counts(y: pd.Series) -> dict:
    """{class: rows} in the order the classes first appear."""
    counts = y.value_counts()
    return {v: int(counts[v]) for v in pd.unique(y)}


def renamed_class(name: Optional[str], mapping: dict, display: dict) -> Optional[str]:
    """The display name of class ``name`` (e.g. a source's positive class, 'malignant')
    after ``mapping`` ({class_key(old): new}); ``display``: {class: name} of the source."""
    if name is None or not mapping:
        return name
    raw = next((c for c, n in display.items() if n == name), name)
    new = mapping.get(class_key(raw), raw)
    return str(display.get(new, new))
