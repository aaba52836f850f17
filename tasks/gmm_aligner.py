"""A Kaldi-style GMM-HMM forced aligner trained on the collection itself (flat start), as Montreal Forced
Aligner does when no pretrained model exists for a language, on ``kaldi-hmm-gmm``'s bindings.

The wheel ships Kaldi's HMM, GMM, tree classes, graph compiler and Viterbi aligner, not its recipes; the recipe
here is train_mono's then train_deltas': 13 MFCCs with deltas and delta-deltas (per-utterance mean and variance
normalised), 3-state left-to-right phones and silence, a lexicon FST with optional silence between words, an
equal alignment to start, then rounds of Viterbi realignment and maximum-likelihood re-estimation with the
Gaussians growing towards a budget; then a phonetic decision tree (tasks/context_tree) ties triphone states,
and the same rounds run again on context-dependent graphs. One model serves several dialects: each utterance
is compiled with its own dialect's lexicon, and all dialects share the one IPA phone set.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from heirloom.errors import HeirloomError

RATE_HZ = 16000
SHIFT_S = 0.01
_WINDOW_CENTRE_S = 0.0125  # snip-edges frames: frame t spans [t * 10 ms, t * 10 ms + 25 ms]
SILENCE = "sil"
_EDGE_SILENCE = "<sil>"  # a word whose only phone is silence, put at silent edges
EDGE_SILENCE_S = 0.05
EDGE_SILENCE_DB = 35.0
STATES = 3  # left-to-right HMM states per phone, each its own pdf class
_TOPOLOGY_STATE = "<State> {i} <PdfClass> {i} <Transition> {i} 0.75 <Transition> {j} 0.25 </State>\n"
ACOUSTIC_SCALE = 0.1
MAX_PHONE_S = 0.4
FRAMES_PER_GAUSS = 50
TRIPHONE_ITERATIONS = 10
FRAMES_PER_LEAF = 20
MIN_LEAF_FRAMES = 20
MIN_SPLIT_GAIN = 50.0
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
    """Whether the first and the last ``EDGE_SILENCE_S`` are all far under the utterance's loudest frames."""
    frame = int(SHIFT_S * RATE_HZ)
    n = len(audio) // frame
    if n == 0:
        return False, False
    level = 10 * np.log10(np.mean(np.square(audio[: n * frame].reshape(n, frame), dtype=np.float64), axis=1) + 1e-12)
    quiet = level < level.max() - EDGE_SILENCE_DB
    k = int(EDGE_SILENCE_S / SHIFT_S)
    return bool(n > 2 * k and quiet[:k].all()), bool(n > 2 * k and quiet[-k:].all())


def features(audio: np.ndarray) -> np.ndarray:
    """MFCC + deltas + delta-deltas at 10 ms, normalised per utterance: ``(frames, 39)`` float32."""
    import kaldi_native_fbank as knf

    opts = knf.MfccOptions()
    opts.frame_opts.samp_freq = RATE_HZ
    opts.frame_opts.dither = 0.0
    mfcc = knf.OnlineMfcc(opts)
    mfcc.accept_waveform(RATE_HZ, (audio.astype(np.float32) * 32768.0).tolist())
    mfcc.input_finished()
    base = np.array([mfcc.get_frame(i) for i in range(mfcc.num_frames_ready)], dtype=np.float32)
    if len(base) == 0:
        return np.zeros((0, 39), np.float32)
    full = knf.compute_deltas(knf.DeltaOptions(order=2, window=2), base)
    return ((full - full.mean(0)) / (full.std(0) + 1e-5)).astype(np.float32)


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
        ``triphone_iterations``) tied triphones; returns log-likelihood per frame after each iteration."""
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
        if triphone_iterations:
            self._tie_triphones(feats, alignments, max_leaves=len(stacked) // FRAMES_PER_LEAF)
            graphs = {u: self._graph(ws, d, a) for u, a, ws, d in data}
            budget = max(self.leaves, gaussians)
            # the monophone alignments name the old model's transition ids: each utterance is realigned first
            history += self._passes(feats, graphs, {}, triphone_iterations, budget)
        self.loglike_per_frame = history[-1]
        return history

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
        """Grow a context tree from the current (monophone) alignments and switch to it: one Gaussian per leaf
        from the tree's own statistics, as Kaldi's gmm-init-model does."""
        from tasks.context_tree import VAR_FLOOR, accumulate, build_tree, phone_questions

        n_tid = self.tm.num_transition_ids + 1
        phone_of = np.zeros(n_tid, np.int64)
        class_of = np.zeros(n_tid, np.int64)
        pdf_class = {self.ctx.compute([p], c)[1]: c for p in self.topo.phones for c in range(STATES)}
        for tid in range(1, n_tid):
            phone_of[tid] = self.tm.transition_id_to_phone(tid)
            class_of[tid] = pdf_class[self.tm.transition_id_to_pdf(tid)]
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
        feats = features(audio)
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
    return round(frame * SHIFT_S + _WINDOW_CENTRE_S, 4)
