"""Similar organisation names among sorted neighbours (sorted-neighbourhood blocking + rapidfuzz).

On a big bundle this is the longest single step of clustering (~10 s for 500,000 distinct names on
2 cores) and it needs only the distinct name keys, so `similar_names_ahead` starts it in a separate
process while clustering goes on with the exact links. That process is a fresh interpreter, not a
fork: a forked child would count the parent's whole heap (~1 GB) in its RSS. This module imports
only numpy and rapidfuzz, so that the child starts small and fast.

    python -m sheetfill.refine.similar   # the child: pickled (threshold, window, keys as lines)
                                         # on stdin, pickled (left, right, score) on stdout
"""

from __future__ import annotations

import os
import pickle
import re
import subprocess
import sys
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np

DIGITS_TABLE = str.maketrans("", "", "abcdefghijklmnopqrstuvwxyz ")
COMPACT_WINDOW = 2
# Distinct name keys above which the pairs are worth a process of their own: its start-up (~0.5 s)
# is won back only when the pairs take seconds
AHEAD_MIN_KEYS = 100_000
SCORE_BATCH = 100_000  # key pairs scored per rapidfuzz call

Pairs = tuple[np.ndarray, np.ndarray, np.ndarray]


def text_order(texts) -> np.ndarray:
    """Indices that sort texts (stably, as Python compares str). Faster than np.argsort of a
    fixed-width str array, which costs 4 bytes per character of the longest text for every text."""
    return np.array(sorted(range(len(texts)), key=texts.__getitem__), dtype=np.int64)


def fuzz_workers(pairs: int) -> int:
    """rapidfuzz workers for a batch: threads pay off only on big batches (start-up costs ~ms)."""
    return -1 if pairs > 50_000 else 1


class NameForms:
    """The rewritten keys the blocking and scoring need: once made, the keys themselves are not."""

    def __init__(self, keys: Iterable[str]):
        digits, compact, token_sorted = [], [], []
        for key in keys:
            digits.append(key.translate(DIGITS_TABLE))
            compact.append(key.replace(" ", ""))
            token_sorted.append(" ".join(sorted(key.split())))
        self.count = len(compact)
        self.digits = np.array(digits, dtype=object)
        self.compact = np.array(compact, dtype=object)
        self.token_sorted = token_sorted

    def blocking_orders(self) -> Iterator[np.ndarray]:
        """Three sort orders of the keys: by sorted tokens, by the same text reversed, and by the
        key without spaces.

        The reversed order catches typos in the first letters that the plain order would scatter;
        the space-free order catches a space typed in the wrong place ('LowveldC ondor'). The
        token-sorted keys are reversed in place, then dropped: one such list is held at a time.
        """
        tokens = self.token_sorted
        yield text_order(tokens)
        for position, key in enumerate(tokens):
            tokens[position] = key[::-1]
        yield text_order(tokens)
        self.token_sorted = tokens = None
        yield text_order(self.compact.tolist())


def similar_name_pairs(keys, threshold: float, window: int) -> Pairs:
    """Index pairs (and scores) of keys whose similarity reaches the threshold among sorted neighbours."""
    return neighbour_pairs(NameForms(keys), threshold, window)


def neighbour_pairs(forms: NameForms, threshold: float, window: int) -> Pairs:
    """similar_name_pairs of the keys forms was made of.

    The score is rapidfuzz's ratio of the keys without spaces: typos and moved spaces cost little,
    but the same words in another order ('Sky Blue' / 'Blue Sky') are another organisation's name.
    Names whose digits differ ('Hangar 7' vs 'Hangar 8') are never paired.
    """
    lefts, rights, scores = [], [], []
    for number, order in enumerate(forms.blocking_orders()):
        ordered = forms.compact[order].tolist()
        reach = window if number < 2 else min(window, COMPACT_WINDOW)  # equal space-free keys sort side by side
        for offset in range(1, min(reach, forms.count - 1) + 1):
            score = neighbour_scores(ordered, offset, threshold)
            hit = np.flatnonzero(score >= threshold)
            left, right = order[hit].astype(np.int32), order[hit + offset].astype(np.int32)
            same_digits = forms.digits[left] == forms.digits[right]
            lefts.append(left[same_digits])
            rights.append(right[same_digits])
            scores.append(score[hit][same_digits])
    if not lefts:
        empty = np.empty(0, dtype=np.int32)
        return empty, empty, np.empty(0, dtype=np.float32)
    return np.concatenate(lefts), np.concatenate(rights), np.concatenate(scores)


def neighbour_scores(ordered: list[str], offset: int, threshold: float) -> np.ndarray:
    """rapidfuzz ratio of each key with the one `offset` places on (0 below the threshold).

    In batches: rapidfuzz copies a batch's strings, ~50 MB for 500,000 pairs at once."""
    from rapidfuzz import fuzz, process

    pairs = len(ordered) - offset  # >= 1: offsets stop short of the last key
    batches = []
    for start in range(0, pairs, SCORE_BATCH):
        end = min(start + SCORE_BATCH, pairs)
        batches.append(
            process.cpdist(
                ordered[start:end],
                ordered[start + offset : end + offset],
                scorer=fuzz.ratio,
                score_cutoff=threshold,
                workers=fuzz_workers(end - start),
            )
        )
    return np.concatenate(batches)


@contextmanager
def similar_names_ahead(keys: np.ndarray, threshold: float, window: int) -> Iterator[Callable[[], Pairs]]:
    """Yield a function returning similar_name_pairs(keys, threshold, window).

    With many keys and a spare core, the pairs are computed meanwhile in a child process, started
    now; if it fails (killed for memory, say), they are computed here instead: the result is the
    same either way. The child is stopped when the block ends.
    """
    from sheetfill.refine.parallel import usable_processes

    if len(keys) < AHEAD_MIN_KEYS or usable_processes() < 2 or not all_lines(keys):
        yield lambda: similar_name_pairs(keys, threshold, window)
        return
    child = PairsProcess(keys, threshold, window)
    try:
        yield child.result
    finally:
        child.stop()


def all_lines(keys) -> bool:
    """Every key can travel as one line: not empty, no line break (name keys never are: they hold
    letters, digits and spaces only; anything else is found here, not in a child)."""
    return all(key and "\n" not in key for key in keys)


class PairsProcess:
    """similar_name_pairs running in a fresh interpreter (python -m sheetfill.refine.similar)."""

    def __init__(self, keys: np.ndarray, threshold: float, window: int):
        self.arguments = keys, threshold, window
        package_root = str(Path(__file__).resolve().parents[2])  # this very sheetfill, however it was found
        path = os.pathsep.join(filter(None, [package_root, os.environ.get("PYTHONPATH")]))
        self.process = subprocess.Popen(
            [sys.executable, "-m", "sheetfill.refine.similar"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env={**os.environ, "PYTHONPATH": path},
        )
        # the keys as lines (names never hold a line break): the child rewrites them one by one
        # and never holds them all as strings (~60 MB on 500,000 names)
        payload = pickle.dumps((threshold, window, "\n".join(keys)), protocol=pickle.HIGHEST_PROTOCOL)
        # written by a thread: the child reads only once it has started, which would block us here
        self.sender = threading.Thread(target=self._send, args=(payload,), daemon=True)
        self.sender.start()

    def _send(self, payload: bytes) -> None:
        try:
            with self.process.stdin:
                self.process.stdin.write(payload)
        except OSError:  # the child is gone: result() computes the pairs here
            pass

    def result(self) -> Pairs:
        self.sender.join()
        try:
            output = self.process.stdout.read()
            if self.process.wait() == 0:
                return pickle.loads(output)
        except (OSError, pickle.UnpicklingError, EOFError):
            pass
        return similar_name_pairs(*self.arguments)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()
        self.process.stdout.close()


def serve() -> None:
    """The child's side: arguments from stdin, pairs to stdout, both pickled."""
    threshold, window, lines = pickle.load(sys.stdin.buffer)
    forms = NameForms(line.group() for line in re.finditer("[^\n]+", lines))
    del lines
    result = neighbour_pairs(forms, threshold, window)
    try:
        sys.stdout.buffer.write(pickle.dumps(result, protocol=pickle.HIGHEST_PROTOCOL))
        sys.stdout.buffer.flush()
    except BrokenPipeError:  # the job is gone (killed): nobody wants the pairs, nothing to report
        os._exit(1)


if __name__ == "__main__":
    serve()
