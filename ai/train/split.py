"""Leak-free splits of the chest radiograph collection.

Images are grouped so that no patient and no publication/website ("reference") appears in two
sets: a group is a connected component of the graph linking each image to its `patient_id` and
to its `reference`. Whole groups are then assigned to train/val/test with a seeded greedy
stratification on the number of images and on the number of negative ("other"/"normal") images.
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Mapping, Sequence

SETS = ("train", "val", "test")


def group_ids(rows: Sequence[Mapping[str, str]], keys: Sequence[str] = ("patient_id", "reference")
              ) -> list[int]:
    """Connected-component id of each row, linking rows that share a value of any key.

    Empty values link nothing (an image with no reference is grouped by its patient only).
    """
    parent: dict[tuple[str, str], tuple[str, str]] = {}

    def find(node: tuple[str, str]) -> tuple[str, str]:
        parent.setdefault(node, node)
        while parent[node] != node:
            parent[node] = parent[parent[node]]
            node = parent[node]
        return node

    nodes_per_row = []
    for index, row in enumerate(rows):
        nodes = [("row", str(index))]
        nodes += [(key, row[key].strip()) for key in keys if row.get(key, "").strip()]
        for node in nodes[1:]:
            parent[find(node)] = find(nodes[0])
        nodes_per_row.append(nodes[0])
    roots: dict[tuple[str, str], int] = {}
    return [roots.setdefault(find(node), len(roots)) for node in nodes_per_row]


def grouped_split(rows: Sequence[Mapping[str, str]], fractions: Sequence[float] = (0.7, 0.15, 0.15),
                  seed: int = 0, positive_label: str = "covid",
                  keys: Sequence[str] = ("patient_id", "reference")) -> list[str]:
    """Assign each row to "train", "val" or "test" by whole groups (see `group_ids`).

    Groups are visited largest first (ties in seeded random order); each goes to the set whose
    share of negatives, then of images, is furthest below its target fraction. Deterministic for
    a given seed and row order.
    """
    gid = group_ids(rows, keys)
    members: dict[int, list[int]] = defaultdict(list)
    for index, group in enumerate(gid):
        members[group].append(index)
    order = list(members)
    random.Random(seed).shuffle(order)
    order.sort(key=lambda g: -len(members[g]))
    total = len(rows)
    total_neg = sum(1 for row in rows if row.get("label") != positive_label) or 1
    count = dict.fromkeys(SETS, 0)
    neg = dict.fromkeys(SETS, 0)
    target = dict(zip(SETS, fractions))
    assignment: dict[int, str] = {}
    for group in order:
        n = len(members[group])
        n_neg = sum(1 for i in members[group] if rows[i].get("label") != positive_label)

        def deficit(name: str, n: int = n, n_neg: int = n_neg) -> tuple[float, float]:
            neg_gap = target[name] - (neg[name] + n_neg) / total_neg if n_neg else 0.0
            return (neg_gap, target[name] - (count[name] + n) / total)

        best = max(SETS, key=deficit)
        assignment[group] = best
        count[best] += n
        neg[best] += n_neg
    return [assignment[g] for g in gid]


def describe(rows: Sequence[Mapping[str, str]], sets: Sequence[str],
             positive_label: str = "covid") -> dict[str, dict[str, int]]:
    """Per set: images, positives, negatives, distinct patients and references."""
    out = {}
    for name in SETS:
        chosen = [row for row, s in zip(rows, sets) if s == name]
        pos = sum(1 for row in chosen if row.get("label") == positive_label)
        out[name] = {"images": len(chosen), "positive": pos, "negative": len(chosen) - pos,
                     "patients": len({row.get("patient_id") for row in chosen}),
                     "references": len({row.get("reference") for row in chosen})}
    return out


def split_text(rows: Sequence[Mapping[str, str]], sets: Sequence[str], seed: int,
               positive_label: str = "covid") -> str:
    """One paragraph for a model card: how the split was made and what it holds."""
    d = describe(rows, sets, positive_label)
    parts = [f"{n} {d[n]['images']} images ({d[n]['positive']} {positive_label}, "
             f"{d[n]['negative']} other; {d[n]['patients']} patients, {d[n]['references']} "
             f"references)" for n in SETS]
    return (
        f"Grouped split of all {len(rows)} radiographs (seed {seed}, "
        "ai.train.split.grouped_split). Every image has source ieee8023, so the split holds out "
        "by patient_id and by reference (the paper or website the image came from) together: "
        f"the {len(set(group_ids(rows)))} groups are the connected components of images sharing "
        "a patient_id or a reference, so no patient and no reference is in two sets. Groups are "
        "assigned largest first to the set whose share of negative images, then of images, is "
        "furthest below its target (70/15/15 %). Result: " + "; ".join(parts) + "."
    )
