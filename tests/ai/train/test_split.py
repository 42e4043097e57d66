"""The grouped split never puts a patient or a reference in two sets."""

from __future__ import annotations

import random
from collections import defaultdict

from ai.train.split import group_ids, grouped_split


def _rows(n_patients: int = 120, seed: int = 1) -> list[dict[str, str]]:
    rng = random.Random(seed)
    rows = []
    for p in range(n_patients):
        label = rng.choice(["covid"] * 4 + ["other", "normal"])
        reference = f"ref{rng.randrange(60)}"
        for _ in range(rng.randint(1, 4)):
            # some patients' images come from a second reference
            ref = reference if rng.random() > 0.1 else f"ref{rng.randrange(60)}"
            rows.append({"patient_id": f"p{p}", "reference": ref, "label": label})
    return rows


def _sets_per(rows, sets, key):
    seen = defaultdict(set)
    for row, s in zip(rows, sets):
        seen[row[key]].add(s)
    return seen


def test_no_patient_or_reference_in_two_sets():
    rows = _rows()
    sets = grouped_split(rows, seed=0)
    assert set(sets) == {"train", "val", "test"}
    for key in ("patient_id", "reference"):
        assert all(len(s) == 1 for s in _sets_per(rows, sets, key).values()), key


def test_split_is_deterministic_and_roughly_proportional():
    rows = _rows(300, seed=2)
    a, b = grouped_split(rows, seed=3), grouped_split(rows, seed=3)
    assert a == b
    share = {s: a.count(s) / len(a) for s in ("train", "val", "test")}
    assert 0.5 < share["train"] < 0.85
    assert share["val"] > 0.05 and share["test"] > 0.05
    negatives = [s for row, s in zip(rows, a) if row["label"] != "covid"]
    assert negatives.count("test") > 0 and negatives.count("val") > 0


def test_group_ids_link_patients_through_references():
    rows = [
        {"patient_id": "a", "reference": "r1"},
        {"patient_id": "b", "reference": "r1"},  # same paper as a
        {"patient_id": "b", "reference": "r2"},  # b also in r2
        {"patient_id": "c", "reference": "r2"},
        {"patient_id": "d", "reference": ""},  # no reference: its own group
        {"patient_id": "e", "reference": ""},
    ]
    g = group_ids(rows)
    assert g[0] == g[1] == g[2] == g[3]
    assert len({g[0], g[4], g[5]}) == 3


def test_describe_counts_each_set():
    from ai.train.split import describe, split_text

    rows = _rows(80, seed=4)
    sets = grouped_split(rows, seed=0)
    d = describe(rows, sets)
    assert sum(v["images"] for v in d.values()) == len(rows)
    assert all(v["positive"] + v["negative"] == v["images"] for v in d.values())
    assert f"all {len(rows)} radiographs" in split_text(rows, sets, seed=0)
