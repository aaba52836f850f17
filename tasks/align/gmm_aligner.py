"""A Kaldi-style GMM-HMM forced aligner trained on the collection itself (flat start), as Montreal Forced
Aligner does when no pretrained model exists for a language, on ``kaldi-hmm-gmm``'s bindings.

The wheel ships Kaldi's HMM, GMM, tree classes, graph compiler and Viterbi aligner, not its recipes; the recipe
here is train_mono's then train_lda_mllt's: 13 MFCCs with deltas and delta-deltas (per-utterance mean and
variance normalised), 3-state left-to-right phones and silence, a lexicon FST with optional silence between
words, an equal alignment to start, then rounds of Viterbi realignment and maximum-likelihood re-estimation with
the Gaussians growing towards a budget; then the features become an LDA projection of spliced MFCCs (classes:
the monophone alignments' states), a phonetic decision tree (tasks/context_tree) ties triphone states, and the
same rounds run again on context-dependent graphs; then LDA+MLLT and the tree once more, from those alignments.
One model serves several dialects: each utterance is compiled with its own dialect's lexicon, and all dialects
share the one IPA phone set.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from heirloom.errors import HeirloomError

RATE_HZ = 16000
SHIFT_S = 0.01
WINDOW_CENTRE_S = 0.0125  # snip-edges frames: frame t spans [t * 10 ms, t * 10 ms + 25 ms]
SILENCE = "sil"
_EDGE_SILENCE = "<sil>"  # a word whose only phone is silence, put at silent edges
EDGE_SILENCE_S = 0.05
EDGE_SILENCE_DB = 35.0
# A noisy recording's pauses are not 35 dB under its speech: an edge at the noise floor (within 6 dB of the
# quietest 5% of frames) and 20 dB under the loudest counts as silent too. On bench/align.py's long recording
# (pink noise at 25 dB) the first word of a chunk otherwise took the pause before it (by 260-300 ms), and the
# word median went 12.1 -> 8.0 ms.
EDGE_FLOOR_PERCENTILE = 5
EDGE_FLOOR_DB = 6.0
EDGE_NOISY_DB = 20.0
STATES = 3  # left-to-right HMM states per phone, each its own pdf class
_TOPOLOGY_STATE = "<State> {i} <PdfClass> {i} <Transition> {i} 0.75 <Transition> {j} 0.25 </State>\n"
ACOUSTIC_SCALE = 0.1
MAX_PHONE_S = 0.4
FRAMES_PER_GAUSS = 50
TRIPHONE_ITERATIONS = 10
FRAMES_PER_LEAF = 20
MIN_LEAF_FRAMES = 20
MIN_SPLIT_GAIN = 50.0
# LDA+MLLT over MFCCs with one frame either side. On bench/align.py (four runs each), phone mean: deltas 13.4 ms,
# LDA 12.2-12.6, LDA+MLLT 11.7; Kaldi's three frames either side (LDA alone) 13.6 and two (with MLLT) 13.4:
# wider context blurs the boundaries an aligner is for. 39 dimensions instead of 30: 11.9.
SPLICE = 1
LDA_DIM = 30
MLLT_ITERATIONS = 10
# LDA+MLLT and the tree estimated again from the first triphone model's alignments (finer classes, better
# boundaries): phone mean 11.9 -> 11.5-11.6 ms over four runs; a third round, 11.6
LDA_ROUNDS = 2
TRAIN_BEAM = 40.0  # the fallback when beam 10 (retry 40) loses an utterance, as early models do with long pauses


class AlignmentError(HeirloomError):
    """An utterance could not be aligned: the transcript does not fit the audio."""


Pronunciations = dict[str, list[tuple[str, ...]]]


@dataclass(frozen=True, slots=True)
class Interval:
    label: str
    start_s: float
    end_s: float


@dataclass(frozen=True)
class Alignment:
    utt_id: str
    words: tuple[Interval, ...]
    phones: tuple[Interval, ...]
    loglike_per_frame: float
    frames: int

    @property
    def duration_outliers(self) -> int:
        """Phones (not silence) longer than 0.4 s or five times the utterance's median phone: the marks of
        a transcript that does not match, or of a phone the lexicon gets wrong."""
        durations = np.array([p.end_s - p.start_s for p in self.phones if p.label != SILENCE])
        if len(durations) == 0:
            return 0
        return int(np.sum((durations > MAX_PHONE_S) | (durations > 5 * np.median(durations))))


def silent_edges(audio: np.ndarray) -> tuple[bool, bool]:
    """Whether the first and the last ``EDGE_SILENCE_S`` are all far under the utterance's loudest frames, or
    at its noise floor and well under the loudest (a field recording's pauses hold its noise)."""
    frame = int(SHIFT_S * RATE_HZ)
    n = len(audio) // frame
    if n == 0:
        return False, False
    level = 10 * np.log10(np.mean(np.square(audio[: n * frame].reshape(n, frame), dtype=np.float64), axis=1) + 1e-12)
    floor = np.percentile(level, EDGE_FLOOR_PERCENTILE)
    loudest = level.max()
    quiet = level < max(loudest - EDGE_SILENCE_DB, min(floor + EDGE_FLOOR_DB, loudest - EDGE_NOISY_DB))
    k = int(EDGE_SILENCE_S / SHIFT_S)
    return bool(n > 2 * k and quiet[:k].all()), bool(n > 2 * k and quiet[-k:].all())


def dithered(audio: np.ndarray) -> np.ndarray:
    """``audio`` with one 16-bit step of Gaussian noise added, the same every time (Kaldi's dither, seeded).

    The digital silence of an edited, gated or synthesized recording has no spectrum: its log energies are a
    constant far below any sound, the per-utterance normalisation is stretched by them, and on noise-free
    recordings no alignment was found at all.
    """
    noise = np.random.default_rng(0).standard_normal(len(audio)).astype(np.float32) / 32768.0
    return (audio.astype(np.float32) + noise).astype(np.float32)


def mfcc(audio: np.ndarray) -> np.ndarray:
    """13 MFCCs at 10 ms of the dithered audio: ``(frames, 13)`` float32."""
    import kaldi_native_fbank as knf

    opts = knf.MfccOptions()
    opts.frame_opts.samp_freq = RATE_HZ
    opts.frame_opts.dither = 0.0
    online = knf.OnlineMfcc(opts)
    online.accept_waveform(RATE_HZ, (dithered(audio) * 32768.0).tolist())
    online.input_finished()
    base = np.array([online.get_frame(i) for i in range(online.num_frames_ready)], dtype=np.float32)
    return base.reshape(-1, 13)


def _normalised(x: np.ndarray) -> np.ndarray:
    return ((x - x.mean(0)) / (x.std(0) + 1e-5)).astype(np.float32) if len(x) else x


def features(audio: np.ndarray) -> np.ndarray:
    """MFCC + deltas + delta-deltas at 10 ms, normalised per utterance: ``(frames, 39)`` float32."""
    import kaldi_native_fbank as knf

    base = mfcc(audio)
    if len(base) == 0:
        return np.zeros((0, 39), np.float32)
    return _normalised(np.asarray(knf.compute_deltas(knf.DeltaOptions(order=2, window=2), base)))


def spliced(audio: np.ndarray) -> np.ndarray:
    """Normalised MFCCs with ``SPLICE`` frames either side (edges repeated): ``(frames, 13 * (2 * SPLICE + 1))``,
    the input of the LDA transform."""
    base = _normalised(mfcc(audio))
    padded = np.pad(base, ((SPLICE, SPLICE), (0, 0)), mode="edge")
    return np.concatenate([padded[k : k + len(base)] for k in range(2 * SPLICE + 1)], axis=1)


def lda(feats: list[np.ndarray], labels: list[np.ndarray], dim: int) -> np.ndarray:
    """The ``(in, dim)`` linear discriminant projection of frames labelled by HMM state (pdf), scaled so that
    the within-class covariance is the identity, as Kaldi's acc-lda/est-lda does before MLLT."""
    import scipy.linalg

    x, y = np.concatenate(feats).astype(np.float64), np.concatenate(labels)
    mean = x.mean(0)
    within = np.zeros((x.shape[1], x.shape[1]))
    between = np.zeros_like(within)
    for c in np.unique(y):
        rows = x[y == c]
        centred = rows - rows.mean(0)
        within += centred.T @ centred
        between += len(rows) * np.outer(rows.mean(0) - mean, rows.mean(0) - mean)
    within = within / len(x) + 1e-6 * np.eye(len(within))
    values, vectors = scipy.linalg.eigh(between / len(x), within)
    return vectors[:, np.argsort(values)[::-1][:dim]].astype(np.float32)


def mllt(x: np.ndarray, y: np.ndarray, *, iterations: int = MLLT_ITERATIONS) -> np.ndarray:
    """A ``(dim, dim)`` maximum-likelihood linear transform (a semi-tied covariance, Gales 1999) that makes
    diagonal Gaussians fit the per-class covariances of ``x`` (labels ``y``) best: the row-by-row update of
    Kaldi's MlltAccs::Update, on one full-covariance Gaussian per class."""
    dim = x.shape[1]
    classes = [c for c in np.unique(y) if np.sum(y == c) > dim]
    counts = np.array([np.sum(y == c) for c in classes], np.float64)
    covs = np.stack([np.cov(x[y == c].T.astype(np.float64), bias=True) for c in classes])
    a = np.eye(dim)
    for _ in range(iterations):
        for i in range(dim):
            variances = np.einsum("j,cjk,k->c", a[i], covs, a[i])
            g = np.einsum("c,cjk->jk", counts / variances, covs)
            cofactor = np.linalg.det(a) * np.linalg.inv(a).T[i]
            g_inv_c = np.linalg.solve(g, cofactor)
            a[i] = g_inv_c * np.sqrt(counts.sum() / (cofactor @ g_inv_c))
    return a


class GmmAligner:
    """Train on utterances of one or more dialects, then align any utterance whose words the lexicons cover."""

    def __init__(self, lexicons: dict[str, Pronunciations]) -> None:
        import kaldi_hmm_gmm as khg

        phones = sorted({p for lex in lexicons.values() for prons in lex.values() for pr in prons for p in pr})
        self.phone_id = {SILENCE: 1, **{p: i + 2 for i, p in enumerate(p for p in phones if p != SILENCE)}}
        self.lexicons = lexicons
        self.word_id: dict[str, int] = {_EDGE_SILENCE: 1}
        for lex in lexicons.values():
            for w in lex:
                self.word_id.setdefault(w, len(self.word_id) + 1)
        n = len(self.phone_id)
        topo = khg.HmmTopology()
        states = "".join(_TOPOLOGY_STATE.format(i=i, j=i + 1) for i in range(STATES))
        topo.read(
            f"<Topology>\n<TopologyEntry>\n<ForPhones> {' '.join(map(str, range(1, n + 1)))} </ForPhones>\n"
            f"{states}<State> {STATES} </State>\n</TopologyEntry>\n</Topology>\n"
        )
        classes = [0] * (n + 1)
        for p in topo.phones:
            classes[p] = topo.num_pdf_classes(p)
        self.topo = topo
        self._use(khg.monophone_context_dependency(phones=topo.phones, phone2num_pdf_classes=classes))
        self.loglike_per_frame = float("nan")
        self.leaves = self.ctx.num_pdfs
        self.transform: np.ndarray | None = None
        self._pdf_class: dict[int, int] | None = None  # a tied model's pdf -> HMM state

    def _use(self, ctx) -> None:
        """Switch to a (new) tree: its transition model, an empty acoustic model, graph compilers for it."""
        import kaldi_hmm_gmm as khg

        self.ctx = ctx
        self.tm = khg.TransitionModel(ctx, self.topo)
        self.am = khg.AmDiagGmm()
        self._compilers = {d: self._compiler(lex) for d, lex in self.lexicons.items()}

    def _compiler(self, lex: Pronunciations):
        """The training-graph compiler for one dialect: its lexicon as an FST with optional silence."""
        import kaldi_hmm_gmm as khg
        import kaldifst

        lines, next_state = [f"0 0 {self.phone_id[SILENCE]} 0 0.693"], 1
        for word, prons in {_EDGE_SILENCE: [(SILENCE,)], **lex}.items():
            for pron in prons:
                src = 0
                for j, phone in enumerate(pron):
                    dst = 0 if j == len(pron) - 1 else next_state
                    next_state += dst != 0
                    lines.append(f"{src} {dst} {self.phone_id[phone]} {self.word_id[word] if j == 0 else 0}")
                    src = dst
        lines.append("0 0.0")
        lexicon_fst = kaldifst.compile("\n".join(lines))
        kaldifst.arcsort(lexicon_fst, sort_type="olabel")
        return khg.TrainingGraphCompiler(self.tm, self.ctx, lexicon_fst, [], khg.TrainingGraphCompilerOptions())

    def _graph(self, words: list[str], dialect: str, audio: np.ndarray):
        """The utterance's graph; silence is obligatory at an edge where the audio is plainly silent there.

        Optional silence alone is not enough: a flat start rarely gives the silence model the leading pause,
        and the first word then swallows it (on bench/align.py's long recording, by 60 to 130 ms).
        """
        unknown = [w for w in words if w not in self.lexicons[dialect]]
        if unknown:
            raise AlignmentError(f"words not in the {dialect} lexicon: {', '.join(unknown[:10])}; build it first")
        if not words:
            raise AlignmentError("empty transcript: nothing to align")
        lead, trail = silent_edges(audio)
        ids = [self.word_id[_EDGE_SILENCE]] * lead + [self.word_id[w] for w in words]
        return self._compilers[dialect].compile_graph_from_text(ids + [self.word_id[_EDGE_SILENCE]] * trail)

    def train(
        self,
        data: list[tuple[str, np.ndarray, list[str], str]],
        *,
        iterations: int = 25,
        max_gauss: int = 1000,
        triphone_iterations: int = TRIPHONE_ITERATIONS,
    ) -> list[float]:
        """Flat-start training on ``(utt_id, audio at 16 kHz, words, dialect)``, monophones then (where
        ``triphone_iterations``) tied triphones; returns log-likelihood per frame after each iteration (each
        LDA+MLLT stage has features of its own, so only figures within one stage compare)."""
        import kaldifst

        feats = {u: features(a) for u, a, _, _ in data}
        graphs = {u: self._graph(ws, d, a) for u, a, ws, d in data}
        stacked = np.concatenate([f for f in feats.values() if len(f)])
        gmm = _gaussian(stacked.mean(0), stacked.var(0))
        for _ in range(self.ctx.num_pdfs):
            self.am.add_pdf(gmm)
        alignments = {}
        for u, graph in graphs.items():
            ok, path = kaldifst.equal_align(graph, len(feats[u]), 0)
            if ok:
                alignments[u] = kaldifst.get_linear_symbol_sequence(path)[1]
        if not alignments:
            raise AlignmentError("no utterance is long enough for its transcript; check the audio and transcripts")
        self._update(feats, alignments, 0)
        # a Gaussian (and a tree leaf) needs data: at most one per FRAMES_PER_GAUSS (FRAMES_PER_LEAF) frames, as
        # small collections would overfit
        gaussians = min(max_gauss, len(stacked) // FRAMES_PER_GAUSS)
        history = self._passes(feats, graphs, alignments, iterations, max(self.ctx.num_pdfs, gaussians))
        raw = {u: spliced(a) for u, a, _, _ in data} if triphone_iterations else {}
        for _ in range(LDA_ROUNDS if triphone_iterations else 0):
            feats = self._to_lda(raw, alignments)
            self._tie_triphones(feats, alignments, max_leaves=len(stacked) // FRAMES_PER_LEAF)
            graphs = {u: self._graph(ws, d, a) for u, a, ws, d in data}
            budget = max(self.leaves, gaussians)
            # the old alignments name the old model's transition ids: each utterance is realigned first
            alignments = {}
            history += self._passes(feats, graphs, alignments, triphone_iterations, budget)
            if not alignments:
                raise AlignmentError(
                    "no utterance could be aligned while training: check that the transcripts belong to the audio"
                )
        self.loglike_per_frame = history[-1]
        return history

    def _to_lda(self, raw: dict[str, np.ndarray], alignments) -> dict[str, np.ndarray]:
        """Estimate LDA+MLLT on the spliced MFCCs ``raw`` from the current alignments' states; every
        utterance's features through it."""
        users = [u for u in alignments if len(raw[u]) == len(alignments[u])]
        pdf_of = np.array([0] + [self.tm.transition_id_to_pdf(t) for t in range(1, self.tm.num_transition_ids + 1)])
        labels = [pdf_of[np.asarray(alignments[u])] for u in users]
        projection = lda([raw[u] for u in users], labels, LDA_DIM)
        rotation = mllt(np.concatenate([raw[u] for u in users]) @ projection, np.concatenate(labels))
        self.transform = (projection @ rotation.T).astype(np.float32)
        return {u: self._project(x) for u, x in raw.items()}

    def _project(self, x: np.ndarray) -> np.ndarray:
        return (x @ self.transform).astype(np.float32)

    def _passes(self, feats, graphs, alignments, iterations: int, budget: int) -> list[float]:
        """Rounds of Viterbi realignment and re-estimation, the Gaussians growing to ``budget`` by 3/4 of them."""
        history, start = [], self.am.num_gauss
        for it in range(1, iterations + 1):
            total, frames = 0.0, 0
            for u, graph in graphs.items():
                result = self._viterbi(graph, feats[u], u)
                if result is not None:
                    alignments[u], like = result
                    total, frames = total + like, frames + len(feats[u])
            target = int(start + (budget - start) * min(1.0, it / (0.75 * iterations)))
            self._update(feats, alignments, target)
            history.append(total / max(frames, 1))
        return history

    def _tie_triphones(self, feats, alignments, *, max_leaves: int) -> None:
        """Grow a context tree from the current alignments and switch to it: one Gaussian per leaf
        from the tree's own statistics, as Kaldi's gmm-init-model does."""
        from tasks.align.context_tree import VAR_FLOOR, accumulate, build_tree, phone_questions

        n_tid = self.tm.num_transition_ids + 1
        phone_of = np.zeros(n_tid, np.int64)
        class_of = np.zeros(n_tid, np.int64)
        pdf_class = self._pdf_class or {self.ctx.compute([p], c)[1]: c for p in self.topo.phones for c in range(STATES)}
        for tid in range(1, n_tid):
            phone_of[tid] = self.tm.transition_id_to_phone(tid)
            class_of[tid] = pdf_class.get(self.tm.transition_id_to_pdf(tid), 0)  # 0: a leaf never aligned to
        stats = accumulate([(feats[u], phone_of[ali], class_of[ali]) for u, ali in alignments.items()])
        phones = list(self.topo.phones)
        sil = self.phone_id[SILENCE]
        tree, leaf_of = build_tree(
            stats,
            phone_questions(stats, phones, sil),
            phones,
            STATES,
            unsplit=frozenset({sil}),
            max_leaves=max(max_leaves, STATES * len(phones)),
            min_count=MIN_LEAF_FRAMES,
            min_gain=MIN_SPLIT_GAIN,
        )
        self._pdf_class = {int(leaf): int(c) for leaf, c in zip(leaf_of, stats.keys[:, 1], strict=True) if leaf >= 0}
        everything = (stats.count.sum(), stats.total.sum(0), stats.square.sum(0))
        self._use(tree.context_dependency())
        for leaf in range(tree.num_leaves):
            rows = leaf_of == leaf
            n, s, ss = (stats.count[rows].sum(), stats.total[rows].sum(0), stats.square[rows].sum(0))
            if n < MIN_LEAF_FRAMES:  # a state no alignment visited: the global Gaussian, until data moves it
                n, s, ss = everything
            mean = s / n
            self.am.add_pdf(_gaussian(mean, np.maximum(ss / n - mean**2, VAR_FLOOR)))
        self.leaves = tree.num_leaves

    def _update(self, feats: dict[str, np.ndarray], alignments: dict[str, list[int]], target_gauss: int) -> None:
        import kaldi_hmm_gmm as khg

        flags = khg.str_to_gmm_flags("mvwt")
        acc = khg.AccumAmDiagGmm()
        acc.init(self.am, flags)
        stats = self.tm.init_stats()
        occupancy = np.zeros(self.am.num_pdfs, np.float32)
        for u, ali in alignments.items():
            f = feats[u]
            for t, tid in enumerate(ali):
                pdf = self.tm.transition_id_to_pdf(tid)
                acc.accumulate_for_gmm(self.am, f[t], pdf, 1.0)
                occupancy[pdf] += 1
                stats = self.tm.accumulate(1.0, tid, stats)
        khg.mle_am_diag_gmm_update(khg.MleDiagGmmOptions(), acc, flags, self.am)
        self.tm.mle_update(stats, khg.MleTransitionUpdateConfig())
        if target_gauss > self.am.num_gauss:
            self.am.split_by_count(occupancy, target_gauss, 0.01, 0.2, 20.0)

    def _viterbi(self, graph, feats: np.ndarray, utt_id: str, beam: float = 10.0) -> tuple[list[int], float] | None:
        import kaldi_hmm_gmm as khg

        if len(feats) == 0:
            return None
        # beam, then 4x beam (Kaldi's retry), then TRAIN_BEAM's pair when that is wider than what was tried
        for b in (beam, TRAIN_BEAM) if TRAIN_BEAM > beam else (beam,):
            decodable = khg.DecodableAmDiagGmmScaled(self.am, self.tm, feats, ACOUSTIC_SCALE)
            result = khg.align_utterance_wrapper(
                khg.AlignConfig(beam=b, retry_beam=4 * b), utt_id, ACOUSTIC_SCALE, graph, decodable, 0, 0, 0, 0.0, 0
            )
            if result[5]:
                return list(result[5]), float(result[3]) / ACOUSTIC_SCALE
        return None

    def align(self, utt_id: str, audio: np.ndarray, words: list[str], dialect: str, *, beam: float = 10.0) -> Alignment:
        """Word and phone intervals of one utterance (16 kHz audio), on the audio's own timeline."""
        feats = features(audio) if self.transform is None else self._project(spliced(audio))
        graph = self._graph(words, dialect, audio)
        result = self._viterbi(graph, feats, utt_id, beam)
        if result is None:
            raise AlignmentError(
                f"{utt_id}: the transcript does not fit the audio ({len(words)} words in {len(audio) / RATE_HZ:.1f} s):"
                " check that they belong together"
            )
        ali, like = result
        phones = self._phones(ali)
        return Alignment(utt_id, self._words(phones, words, dialect), phones, like / max(len(ali), 1), len(ali))

    def _phones(self, ali: list[int]) -> tuple[Interval, ...]:
        names = {v: k for k, v in self.phone_id.items()}
        out, start = [], 0
        for t, tid in enumerate(ali):
            if self.tm.is_final(tid):  # the transition out of a phone's last state ends the phone
                phone = names[self.tm.transition_id_to_phone(tid)]
                out.append(Interval(phone, _time(start), _time(t + 1)))
                start = t + 1
        return tuple(out)

    def _words(self, phones: tuple[Interval, ...], words: list[str], dialect: str) -> tuple[Interval, ...]:
        """Group the non-silence phones into the transcript's words, choosing the variant that was aligned."""
        spoken = [p for p in phones if p.label != SILENCE]
        out, i = [], 0
        for w in words:
            prons = sorted(self.lexicons[dialect][w], key=len, reverse=True)
            chosen = next((pr for pr in prons if tuple(p.label for p in spoken[i : i + len(pr)]) == pr), prons[-1])
            span = spoken[i : i + len(chosen)] or spoken[-1:]
            out.append(Interval(w, span[0].start_s, span[-1].end_s))
            i += len(chosen)
        return tuple(out)


def _gaussian(mean: np.ndarray, var: np.ndarray):
    import kaldi_hmm_gmm as khg

    gmm = khg.DiagGmm(nmix=1, dim=len(mean))
    gmm.set_invvars_and_means((1 / var)[None].astype(np.float32), mean[None].astype(np.float32))
    gmm.set_weights(np.array([1.0], np.float32))
    gmm.compute_gconsts()
    return gmm


def _time(frame: int) -> float:
    """Seconds of the boundary before ``frame``: that frame's window centre. The state changes at the first
    frame whose window (and delta context) is mostly the new phone, i.e. whose centre has passed the boundary."""
    return round(frame * SHIFT_S + WINDOW_CENTRE_S, 4)
