"""Triphone state tying: a phonetic decision tree grown from a monophone pass's alignments.

This is what Kaldi's acc-tree-stats, cluster-phones and build-tree do for train_deltas (the tree-based state
tying of Young, Odell and Woodland, 1994): gather one Gaussian's statistics per (centre phone, HMM state,
left phone, right phone) seen, derive the questions by clustering phones on their data, then split greedily,
always taking the question that raises the likelihood most, until no split gains enough or leaves get too few
frames. kaldi-hmm-gmm binds the tree classes (``ContextDependency``, ``EventMap``) but not their builders, so
the splitting is written here in numpy, and the finished tree is handed to Kaldi in its own binary format.
"""

from __future__ import annotations

import heapq
import struct
from dataclasses import dataclass

import numpy as np

LEFT, CENTRE, RIGHT, PDF_CLASS = 0, 1, 2, -1  # Kaldi's event keys for a triphone (N=3, P=1)
VAR_FLOOR = 0.01  # features are normalised to unit variance per utterance


@dataclass(frozen=True)
class TreeStats:
    """Sufficient statistics per context seen: ``keys[i] = (centre, pdf_class, left, right)``; a context of 0
    is the utterance edge."""

    keys: np.ndarray  # (n, 4) int
    count: np.ndarray  # (n,)
    total: np.ndarray  # (n, dim) sum of features
    square: np.ndarray  # (n, dim) sum of squared features


def accumulate(
    sequences: list[tuple[np.ndarray, np.ndarray, np.ndarray]],
) -> TreeStats:
    """Statistics from ``(features (T, dim), phone per frame (T,), pdf class per frame (T,))`` per utterance.

    A phone's context is the phone before and after it in the aligned sequence, silence included.
    """
    keys, feats = [], []
    for f, phone, cls in sequences:
        if len(phone) == 0:
            continue
        starts = np.flatnonzero(np.r_[True, (phone[1:] != phone[:-1]) | (cls[1:] < cls[:-1])])
        seq = phone[starts]
        segment = np.cumsum(np.isin(np.arange(len(phone)), starts)) - 1
        left = np.r_[0, seq[:-1]][segment]
        right = np.r_[seq[1:], 0][segment]
        keys.append(np.stack([phone, cls, left, right], axis=1))
        feats.append(f.astype(np.float64))
    k = np.concatenate(keys)
    x = np.concatenate(feats)
    unique, inverse = np.unique(k, axis=0, return_inverse=True)
    inverse = inverse.ravel()
    count = np.bincount(inverse, minlength=len(unique)).astype(np.float64)
    total = np.zeros((len(unique), x.shape[1]))
    square = np.zeros_like(total)
    np.add.at(total, inverse, x)
    np.add.at(square, inverse, x * x)
    return TreeStats(unique, count, total, square)


def _loglike(count: np.ndarray, total: np.ndarray, square: np.ndarray) -> np.ndarray:
    """Log-likelihood of data under its own diagonal Gaussian, less the terms linear in the count (they cancel
    in every gain)."""
    n = np.maximum(count, 1e-10)[..., None]
    var = np.maximum(square / n - (total / n) ** 2, VAR_FLOOR)
    return -0.5 * count * np.log(var).sum(-1)


def phone_questions(stats: TreeStats, phones: list[int], silence: int) -> np.ndarray:
    """Questions as a ``(questions, max phone + 1)`` membership matrix: every cluster of a Ward dendrogram
    over the phones' per-state means (as cluster-phones builds them from data, not from a phonetic table).
    The utterance edge (0) answers as silence does."""
    from scipy.cluster.hierarchy import linkage, to_tree

    classes = int(stats.keys[:, 1].max()) + 1
    profile = np.zeros((len(phones), classes * stats.total.shape[1]))
    for i, p in enumerate(phones):
        for c in range(classes):
            rows = (stats.keys[:, 0] == p) & (stats.keys[:, 1] == c)
            n = stats.count[rows].sum()
            if n:
                profile[i, c * stats.total.shape[1] : (c + 1) * stats.total.shape[1]] = stats.total[rows].sum(0) / n
    sets: list[list[int]] = []
    if len(phones) > 1:

        def walk(node) -> list[int]:
            members = [phones[node.id]] if node.is_leaf() else walk(node.left) + walk(node.right)
            sets.append(members)
            return members

        walk(to_tree(linkage(profile, method="ward")))
    out = np.zeros((len(sets), max(phones) + 1), bool)
    for q, members in enumerate(sets):
        out[q, members] = True
        out[q, 0] = silence in members
    return out[~out[:, 1:].all(1)]  # the question that every phone answers yes is no question


@dataclass(frozen=True)
class _Split:
    gain: float
    key: int
    question: int
    yes: np.ndarray
    no: np.ndarray


def _best_split(stats: TreeStats, rows: np.ndarray, questions: np.ndarray, min_count: float) -> _Split | None:
    if not len(questions):
        return None
    n, s, ss = stats.count[rows], stats.total[rows], stats.square[rows]
    all_n, all_s, all_ss = n.sum(), s.sum(0), ss.sum(0)
    parent = _loglike(all_n, all_s, all_ss)
    best = None
    for key, column in ((LEFT, 2), (RIGHT, 3)):
        member = questions[:, stats.keys[rows, column]].astype(np.float64)  # (questions, rows)
        yes_n, yes_s, yes_ss = member @ n, member @ s, member @ ss
        no_n = all_n - yes_n
        gain = _loglike(yes_n, yes_s, yes_ss) + _loglike(no_n, all_s - yes_s, all_ss - yes_ss) - parent
        gain[(yes_n < min_count) | (no_n < min_count)] = -np.inf
        q = int(np.argmax(gain))
        if np.isfinite(gain[q]) and (best is None or gain[q] > best.gain):
            chosen = member[q].astype(bool)
            best = _Split(float(gain[q]), key, q, rows[chosen], rows[~chosen])
    return best


def build_tree(
    stats: TreeStats,
    questions: np.ndarray,
    phones: list[int],
    pdf_classes: int,
    *,
    unsplit: frozenset[int] = frozenset(),
    max_leaves: int,
    min_count: float,
    min_gain: float,
) -> tuple[ContextTree, np.ndarray]:
    """Grow the tree; returns it and the leaf of every row of ``stats``.

    One root per (phone, HMM state); phones in ``unsplit`` (silence) keep one leaf per state, as in Kaldi's
    recipes. Splits are taken best first across all roots, so the leaf budget goes where it gains most.
    """
    leaf_of = np.full(len(stats.keys), -1)
    nodes: dict[int, tuple] = {}  # node id -> ("leaf", rows) or ("split", key, question, yes id, no id)
    roots: dict[tuple[int, int], int] = {}
    heap: list[tuple[float, int, _Split]] = []
    for p in phones:
        for c in range(pdf_classes):
            rows = np.flatnonzero((stats.keys[:, 0] == p) & (stats.keys[:, 1] == c))
            roots[(p, c)] = node = len(nodes)
            nodes[node] = ("leaf", rows)
            split = None if p in unsplit or len(rows) == 0 else _best_split(stats, rows, questions, min_count)
            if split is not None:
                heapq.heappush(heap, (-split.gain, node, split))
    leaves = len(nodes)
    while heap and leaves < max_leaves:
        neg_gain, node, split = heapq.heappop(heap)
        if -neg_gain < min_gain:
            break
        yes, no = len(nodes), len(nodes) + 1
        nodes[yes], nodes[no] = ("leaf", split.yes), ("leaf", split.no)
        nodes[node] = ("split", split.key, split.question, yes, no)
        leaves += 1
        for child, rows in ((yes, split.yes), (no, split.no)):
            s = _best_split(stats, rows, questions, min_count)
            if s is not None:
                heapq.heappush(heap, (-s.gain, child, s))
    numbered: dict[int, int] = {}
    for node, spec in sorted(nodes.items()):
        if spec[0] == "leaf":
            numbered[node] = len(numbered)
            leaf_of[spec[1]] = numbered[node]
    return ContextTree(nodes, roots, numbered, questions, max(phones), pdf_classes), leaf_of


@dataclass(frozen=True)
class ContextTree:
    nodes: dict[int, tuple]
    roots: dict[tuple[int, int], int]
    leaf_ids: dict[int, int]
    questions: np.ndarray
    max_phone: int
    pdf_classes: int

    @property
    def num_leaves(self) -> int:
        return len(self.leaf_ids)

    def context_dependency(self):
        """The tree as Kaldi's ``ContextDependency`` (N=3, P=1): a table on the centre phone, then one on the
        HMM state, then this tree's splits on the left and right phones."""
        import kaldi_hmm_gmm as khg

        out = bytearray()
        out += _token("ContextDependency") + _int(3) + _int(CENTRE) + _token("ToPdf")
        out += _token("TE") + _int(CENTRE) + _uint(self.max_phone + 1) + _token("(")
        for p in range(self.max_phone + 1):
            if (p, 0) not in self.roots:
                out += _token("NULL")
                continue
            out += _token("TE") + _int(PDF_CLASS) + _uint(self.pdf_classes) + _token("(")
            for c in range(self.pdf_classes):
                out += self._node(self.roots[(p, c)])
            out += _token(")")
        out += _token(")") + _token("EndContextDependency")
        ctx = khg.ContextDependency.__new__(khg.ContextDependency)
        ctx.__setstate__((list(struct.unpack(f"{len(out)}b", bytes(out))),))
        return ctx

    def _node(self, node: int) -> bytes:
        spec = self.nodes[node]
        if spec[0] == "leaf":
            return _token("CE") + _int(self.leaf_ids[node])
        _, key, question, yes, no = spec
        members = np.flatnonzero(self.questions[question]).tolist()
        yes_set = bytes([4]) + struct.pack(f"<i{len(members)}i", len(members), *members)
        return _token("SE") + _int(key) + yes_set + _token("{") + self._node(yes) + self._node(no) + _token("}")


# Kaldi's binary encoding (kaldi-io's WriteToken / WriteBasicType): a token and a space; an integer as its
# size (negative when unsigned) and its little-endian bytes.
def _token(name: str) -> bytes:
    return name.encode() + b" "


def _int(value: int) -> bytes:
    return bytes([4]) + struct.pack("<i", value)


def _uint(value: int) -> bytes:
    return struct.pack("<b", -4) + struct.pack("<I", value)
