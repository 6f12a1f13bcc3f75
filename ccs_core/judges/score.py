"""Score heads: label -> judges -> CCS, through the verdict cache, concurrently.

Every label and verdict is written to the store as soon as it arrives, so a crash loses nothing
already received, and a re-run of the same heads makes no request. Cached unparseable / unsupported
answers are reused unless ``retry_unparseable``; API failures (after the SDK's retries) are never
cached: they are reported in ``errors`` and make the head incomplete.

``score_heads`` has two phases per head, a label phase (the user's label, a cached one or a request)
and a judge phase (one verdict per judge), sharing one ``InFlight`` helper that submits each distinct
request once and hands back the answers. They run pipelined: a head's verdicts are asked as soon as
its label arrives, so a slow label delays only its own head.
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


class InFlight:
    """Requests in flight on a thread pool, each sent once however many heads wait for it (two heads
    with the same label and spans share one verdict request). ``answers()`` yields every finished
    request as (tag, waiting heads, result, JudgeError or None) in this thread, while new requests may
    still be asked; ``close()`` drops queued work on an interruption (requests in flight finish)."""

    def __init__(self, max_workers: int):
        self.pool = ThreadPoolExecutor(max_workers=max(1, max_workers), thread_name_prefix="judge")
        self.pending: dict = {}   # future -> tag
        self.waiting: dict = {}   # tag -> heads that wait for that request

    def ask(self, tag: tuple, head: str, send: Callable[[], Any]) -> None:
        if tag in self.waiting:
            self.waiting[tag].append(head)
            return
        self.waiting[tag] = [head]
        self.pending[self.pool.submit(send)] = tag

    def answers(self):
        while self.pending:
            finished, _ = wait(list(self.pending), return_when=FIRST_COMPLETED)
            for fut in finished:
                tag = self.pending.pop(fut)
                heads = self.waiting.pop(tag)
                try:
                    yield tag, heads, fut.result(), None
                except JudgeError as err:
                    yield tag, heads, None, err

    def close(self, grace: "float | None" = None) -> None:
        """Drop queued requests; wait for those in flight (at most ``grace`` seconds, when given: an
        interruption must not wait for an endpoint that never answers)."""
        if grace is None:
            self.pool.shutdown(wait=True, cancel_futures=True)
            return
        self.pool.shutdown(wait=False, cancel_futures=True)
        wait(list(self.pending), timeout=grace)


INTERRUPT_GRACE = 5.0  # seconds an interrupted run waits for requests in flight (they are saved if they end)


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
    total = len(heads) * (1 + len(judges))
    done = 0

    def tick(n: int = 1) -> None:
        nonlocal done
        done += n
        if progress is not None:
            progress(done, total)

    if max_workers is None:
        found = [a.backend.settings.max_workers for a in [labeller, *judges] if hasattr(a, "backend")]
        max_workers = max(found, default=4)
    failed: dict = {}  # (judge name, key) -> error of a verdict request that failed

    # ---- label phase: the user's label, a cached one, or a request --------------------------
    def ask_label(h: str) -> None:
        if h in overrides:
            got_label(h, overrides[h], {"status": "user", "label": overrides[h]})
            return
        key = cache_key(**labeller.cache_parts(heads[h]))
        hit = cached(LABEL_KIND, key)
        if hit is not None:
            got_label(h, hit["label"], {**hit, "cached": True})
        else:
            requests.ask((LABEL_KIND, key), h, lambda: label_request(h, key))

    def label_request(h: str, key: str) -> LabelResult:
        res = breaker.call(labeller.name, lambda: labeller.label(heads[h]))
        store.set(LABEL_KIND, key, res.to_json())  # saved at once: a crash later loses nothing
        return res

    def got_label(h: str, label: "str | None", record: dict) -> None:
        recs[h].label, recs[h].label_record = label, record
        tick()
        ask_verdicts(h)  # a head's verdicts start as soon as its label is there

    def label_failed(h: str, err: JudgeError) -> None:
        result.errors.append({"head": h, "stage": "label", "agent": labeller.name, "error": str(err)})
        tick(1 + len(judges))  # no label: its verdicts are not asked

    # ---- judge phase: one verdict per (head, judge), cached or requested ---------------------
    def ask_verdicts(h: str) -> None:
        if recs[h].label is None:  # an unparseable label: no verdict is asked
            tick(len(judges))
            return
        for judge in judges:
            key = cache_key(**judge.cache_parts(recs[h].label, heads[h]))
            hit = cached(VERDICT_KIND, key)
            if hit is not None:
                got_verdict(h, judge.name, {**hit, "cached": True})
            elif (judge.name, key) in failed:  # the same request already failed in this run
                verdict_failed(h, judge.name, failed[judge.name, key])
            else:
                requests.ask((VERDICT_KIND, judge.name, key), h, lambda j=judge, k=key: verdict_request(j, h, k))

    def verdict_request(judge: Judge, h: str, key: str) -> JudgeResult:
        res = breaker.call(judge.name, lambda: judge.judge(recs[h].label, heads[h]))
        if len(res.fits) != n_spans:
            raise JudgeError(f"Judge {judge.name} returned {len(res.fits)} verdicts for {n_spans} spans.")
        store.set(VERDICT_KIND, key, res.to_json())
        return res

    def got_verdict(h: str, judge: str, record: dict) -> None:
        recs[h].verdicts[judge] = record
        tick()

    def verdict_failed(h: str, judge: str, err: str) -> None:
        result.errors.append({"head": h, "stage": "judge", "agent": judge, "error": err})
        tick()

    requests, interrupted = InFlight(max_workers), True
    try:
        for h in heads:
            ask_label(h)
        for tag, hs, res, err in requests.answers():
            result.calls += err is None
            for h in hs:
                if tag[0] == LABEL_KIND and err is None:
                    got_label(h, res.label, {**res.to_json(), "cached": False})
                elif tag[0] == LABEL_KIND:
                    label_failed(h, err)
                elif err is None:
                    got_verdict(h, tag[1], {**res.to_json(), "cached": False})
                else:
                    failed[tag[1], tag[2]] = str(err)
                    verdict_failed(h, tag[1], str(err))
        interrupted = False
    finally:
        requests.close(INTERRUPT_GRACE if interrupted else None)
    for h in heads:
        recs[h].verdicts = {j.name: recs[h].verdicts[j.name] for j in judges if j.name in recs[h].verdicts}
    return summarise(result, [j.name for j in judges], thresholds)
