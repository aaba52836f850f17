"""Triphone state tying: the tree splits where the context changes the sound, respects its limits, and Kaldi
reads it back as the same function of (left, centre, right, state)."""

from __future__ import annotations

import numpy as np

from tasks.align.context_tree import RIGHT, accumulate, build_tree, phone_questions

SIL = 1


def _sequences(seed: int = 0) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Phones 2-6 between silences; phone 4 sounds different before phones 5 and 6 (its right context)."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(60):
        seq = [SIL, *rng.integers(2, 7, size=12).tolist(), SIL]
        phone, cls, feats = [], [], []
        for i, p in enumerate(seq):
            for c in range(3):
                k = int(rng.integers(3, 6))
                mean = np.full(6, float(p)) + 0.5 * c
                if p == 4 and i + 1 < len(seq) and seq[i + 1] in (5, 6):
                    mean[:3] += 4.0
                feats.append(mean + rng.normal(scale=0.3, size=(k, 6)))
                phone += [p] * k
                cls += [c] * k
        out.append((np.concatenate(feats), np.array(phone), np.array(cls)))
    return out


def test_tree_splits_on_the_context_that_matters_and_kaldi_reads_it_back() -> None:
    stats = accumulate(_sequences())
    phones = [1, 2, 3, 4, 5, 6]
    questions = phone_questions(stats, phones, SIL)
    assert questions[:, 0].any() and not questions[:, 1:].all(1).any()  # the edge answers with silence
    tree, leaf_of = build_tree(
        stats, questions, phones, 3, unsplit=frozenset({SIL}), max_leaves=200, min_count=40, min_gain=50.0
    )
    assert (leaf_of >= 0).all() and tree.num_leaves > 18
    for leaf in range(tree.num_leaves):
        assert stats.count[leaf_of == leaf].sum() >= 40
    # silence keeps one leaf per state; phone 4's leaves divide on whether 5 or 6 follows
    for c in range(3):
        assert len(set(leaf_of[(stats.keys[:, 0] == SIL) & (stats.keys[:, 1] == c)])) == 1
        rows = (stats.keys[:, 0] == 4) & (stats.keys[:, 1] == c)
        before = set(leaf_of[rows & np.isin(stats.keys[:, 3], [5, 6])])
        other = set(leaf_of[rows & ~np.isin(stats.keys[:, 3], [5, 6])])
        assert before and other and not before & other
    assert tree.nodes[tree.roots[(4, 0)]][:2] == ("split", RIGHT)  # the biggest gain is asked first

    ctx = tree.context_dependency()
    assert (ctx.context_width, ctx.central_position, ctx.num_pdfs) == (3, 1, tree.num_leaves)
    for key, leaf in zip(stats.keys, leaf_of, strict=True):
        centre, cls, left, right = (int(v) for v in key)
        assert ctx.compute([left, centre, right], cls) == (True, leaf)


def test_leaf_budget_and_gain_threshold_stop_the_growth() -> None:
    stats = accumulate(_sequences(1))
    phones = [1, 2, 3, 4, 5, 6]
    questions = phone_questions(stats, phones, SIL)
    small, _ = build_tree(stats, questions, phones, 3, max_leaves=20, min_count=40, min_gain=50.0)
    assert small.num_leaves == 20
    none, _ = build_tree(stats, questions, phones, 3, max_leaves=200, min_count=40, min_gain=1e12)
    assert none.num_leaves == 18
