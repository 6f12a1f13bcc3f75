"""Score heads: label -> judges -> CCS, through the verdict cache, concurrently.

Every label and verdict is written to the store as soon as it arrives, so a crash loses nothing
already received, and a re-run of the same heads makes no request. Cached unparseable / unsupported
answers are reused unless ``retry_unparseable``; API failures (after the SDK's retries) are never
cached: they are reported in ``errors`` and make the head incomplete.
"""
from __future__ import annotations

import threading
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from typing import Any, Callable, Mapping, Sequence

from ..ccs import Thresholds
from ..errors import DataError, EndpointUnreachable, JudgeError
from ..heads import HeadId
from ..scores import HeadScore, ScoreResult
from ..store import Store, cache_key
from .base import OK, Judge, JudgeResult, Labeller, LabelResult

Progress = Callable[[int, int], None]
LABEL_KIND, VERDICT_KIND = "label", "verdict"


def head_name(head: Any) -> str:
    try:
        return str(HeadId.parse(head))
    except Exception:
        return str(head)


def _check_spans(spans_by_head: Mapping[Any, Sequence[str]]) -> tuple[dict[str, list[str]], int]:
    heads = {head_name(h): [str(s) for s in spans] for h, spans in spans_by_head.items()}
    counts = {len(v) for v in heads.values()}
    if len(counts) > 1:
        raise DataError(f"All heads must have the same number of spans to compare CCS; got "
                        f"{sorted(counts)}. Re-run TEXTSPAN with one span count.")
    for h, spans in heads.items():
        if not spans or any(not s.strip() for s in spans):
            raise DataError(f"Head {h} has an empty span list or an empty span.")
    return heads, counts.pop() if counts else 5


def _check_available(agents: Sequence[Any]) -> None:
    off = [f"{a.name}: {why}" for a in agents for ok, why in [a.available()] if not ok]
    if off:
        raise JudgeError("Cannot score with unavailable labeller/judges — " + "; ".join(off))


def summarise(result: ScoreResult, judges: "Sequence[str] | None" = None,
              thresholds: Thresholds = Thresholds()) -> ScoreResult:
    """(Re)compute per-head CCS, categories and CCS@K from a result's stored verdicts, over
    ``judges`` (default: all judges of the result), in place. Makes no request."""
    return result.summarise(list(judges or [j["name"] for j in result.judges]), thresholds)


BREAK_AFTER = 3  # consecutive unreachable requests to one agent before its remaining ones are not sent


class Breaker:
    """Per agent: after ``BREAK_AFTER`` consecutive requests that got no answer at all (connection
    refused, timeouts after the SDK's retries), stop sending its remaining requests: they fail at once
    with the reason, the heads stay incomplete and can be re-asked. Any answer resets the count."""

    def __init__(self, after: int = BREAK_AFTER):
        self.after, self.fails, self.first = after, {}, {}
        self.lock = threading.Lock()

    def call(self, agent: str, send):
        with self.lock:
            if self.fails.get(agent, 0) >= self.after:
                raise EndpointUnreachable(f"{agent}: not sent — the endpoint gave no answer to {self.after} "
                                          f"requests in a row ({self.first[agent][:200]}); re-ask once it is back.")
        try:
            res = send()
        except EndpointUnreachable as err:
            with self.lock:
                self.fails[agent] = self.fails.get(agent, 0) + 1
                self.first.setdefault(agent, str(err))
            raise
        with self.lock:
            self.fails[agent] = 0
        return res


def score_heads(spans_by_head: Mapping[Any, Sequence[str]], labeller: Labeller,
                judges: Sequence[Judge], store: "Store | None" = None,
                progress: "Progress | None" = None, *, labels: "Mapping[Any, str] | None" = None,
                max_workers: "int | None" = None, thresholds: Thresholds = Thresholds(),
                retry_unparseable: bool = False) -> ScoreResult:
    """Label every head, judge every (head, judge), compute CCS and CCS@K.

    ``labels`` overrides the labeller for the heads it names (e.g. a label edited by the user).
    ``progress(done, total)`` is called from this thread after every label and verdict.
    ``max_workers`` bounds concurrent requests (default: the judges' ``JudgeSettings.max_workers``).
    """
    heads, n_spans = _check_spans(spans_by_head)
    if not judges:
        raise JudgeError("Choose at least one judge to compute CCS.")
    if len({j.name for j in judges}) != len(judges):
        raise JudgeError("Two judges share a name; give each judge a distinct name.")
    overrides = {head_name(h): str(v).strip() for h, v in (labels or {}).items() if str(v).strip()}
    need_labeller = any(h not in overrides for h in heads)
    _check_available(([labeller] if need_labeller else []) + list(judges))
    store = store if store is not None else Store(None)
    result = ScoreResult(n_spans=n_spans, labeller=labeller.describe(), judges=[j.describe() for j in judges],
                         heads={h: HeadScore(spans=spans) for h, spans in heads.items()})
    recs = result.heads

    def cached(kind: str, key: str) -> "dict | None":
        value = store.get(kind, key)
        if value is None or (retry_unparseable and value.get("status") != OK):
            return None
        return value

    breaker = Breaker()

    def run_label(h: str, key: str) -> LabelResult:
        res = breaker.call(labeller.name, lambda: labeller.label(heads[h]))
        store.set(LABEL_KIND, key, res.to_json())  # saved at once: a crash later loses nothing
        return res

    def run_judge(judge: Judge, h: str, key: str) -> JudgeResult:
        res = breaker.call(judge.name, lambda: judge.judge(recs[h].label, heads[h]))
        if len(res.fits) != n_spans:
            raise JudgeError(f"Judge {judge.name} returned {len(res.fits)} verdicts for {n_spans} spans.")
        store.set(VERDICT_KIND, key, res.to_json())
        return res

    total = len(heads) * (1 + len(judges))
    done = 0

    def tick() -> None:
        nonlocal done
        done += 1
        if progress is not None:
            progress(done, total)

    if max_workers is None:
        found = [a.backend.settings.max_workers for a in [labeller, *judges] if hasattr(a, "backend")]
        max_workers = max(found, default=4)
    pool = ThreadPoolExecutor(max_workers=max(1, max_workers), thread_name_prefix="judge")
    # One loop over every request in flight: a head's verdict requests start as soon as its label
    # arrives (a slow label delays only its own head). Identical requests are sent once.
    pending: dict = {}                  # future -> ("label", key) | ("verdict", (judge name, key))
    waiting: dict = {}                  # the same keys -> heads that wait for that request
    failed: dict = {}                   # (judge name, key) -> error of a request that failed

    def verdict_error(h: str, name: str, err: str) -> None:
        result.errors.append({"head": h, "stage": "judge", "agent": name, "error": err})

    def start_verdicts(h: str) -> None:
        if recs[h].label is None:  # an unparseable label: no verdict is asked
            for _ in judges:
                tick()
            return
        for judge in judges:
            key = cache_key(**judge.cache_parts(recs[h].label, heads[h]))
            tag = ("verdict", (judge.name, key))
            hit = cached(VERDICT_KIND, key)
            if hit is not None:
                recs[h].verdicts[judge.name] = {**hit, "cached": True}
                tick()
            elif tag[1] in failed:
                verdict_error(h, judge.name, failed[tag[1]])
                tick()
            elif tag in waiting:  # same label and spans as another head: one request serves both
                waiting[tag].append(h)
            else:
                waiting[tag] = [h]
                pending[pool.submit(run_judge, judge, h, key)] = tag

    try:
        for h in heads:
            if h in overrides:
                recs[h].label, recs[h].label_record = overrides[h], {"status": "user", "label": overrides[h]}
                tick()
                start_verdicts(h)
                continue
            key = cache_key(**labeller.cache_parts(heads[h]))
            hit = cached(LABEL_KIND, key)
            if hit is not None:
                recs[h].label, recs[h].label_record = hit["label"], {**hit, "cached": True}
                tick()
                start_verdicts(h)
            elif ("label", key) in waiting:
                waiting["label", key].append(h)
            else:
                waiting["label", key] = [h]
                pending[pool.submit(run_label, h, key)] = ("label", key)
        while pending:
            finished, _ = wait(list(pending), return_when=FIRST_COMPLETED)
            for fut in finished:
                tag = pending.pop(fut)
                hs = waiting.pop(tag)
                if tag[0] == "label":
                    try:
                        res = fut.result()
                        result.calls += 1
                    except JudgeError as err:
                        for h in hs:
                            result.errors.append({"head": h, "stage": "label", "agent": labeller.name,
                                                     "error": str(err)})
                            tick()
                            for _ in judges:  # no label: its verdicts are not asked
                                tick()
                        continue
                    for h in hs:
                        recs[h].label, recs[h].label_record = res.label, {**res.to_json(), "cached": False}
                        tick()
                        start_verdicts(h)
                    continue
                name = tag[1][0]
                try:
                    res = fut.result()
                    result.calls += 1
                    for h in hs:
                        recs[h].verdicts[name] = {**res.to_json(), "cached": False}
                except JudgeError as err:
                    failed[tag[1]] = str(err)
                    for h in hs:
                        verdict_error(h, name, str(err))
                for _ in hs:
                    tick()
    finally:
        # on an interruption, drop queued work; requests in flight finish and are saved
        pool.shutdown(wait=True, cancel_futures=True)
    for h in heads:
        recs[h].verdicts = {j.name: recs[h].verdicts[j.name] for j in judges if j.name in recs[h].verdicts}
    return summarise(result, [j.name for j in judges], thresholds)
