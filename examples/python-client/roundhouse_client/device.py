"""The device loop of docs/protocol.md: check in, download, run `work`, upload, repeat.

HTTP with urllib. The retry rule is the SDK's (docs/protocol.md, "Errors a client must handle"): network
failures, timeouts, 429 and 5xx are retried with equal-jitter backoff (500 ms x 2^(k-1), capped at 30 s,
4 tries), a longer `Retry-After` wins; every other 4xx is the server's verdict and is not retried.
"""

import gzip
import json
import math
import random
import sys
import time
import urllib.error
import urllib.request
from email.utils import parsedate_to_datetime

from .errors import ClientError
from .work import check_client_plan, read_examples_csv, run_work

TRIES = 4
TIMEOUT_S = 30
MAX_SERVED = 64
BROADCASTS_KEPT = 4


class HttpError(ClientError):
    """An answer with an error status: the server's code (from its error body) and whether to retry."""

    def __init__(self, status, code, message, retry_after=None):
        super().__init__(code, f"{message} (HTTP {status})" if status else message)
        self.status = status
        self.retry_after = retry_after
        # status 0: no answer at all (refused, reset, timed out), retried like a 5xx
        self.transient = status in (0, 429) or status >= 500


def _retry_after(value):
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        try:
            return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
        except (TypeError, ValueError):
            return None


class Device:
    """One device of a population, in anonymous mode (the device id travels in the body and header)."""

    def __init__(self, server, population, device_id, data_text, max_wait_s=math.inf, log=print, warn=None):
        self.server = server.rstrip("/")
        self.population = population
        self.device_id = device_id
        self.data_text = data_text
        self.max_wait_s = max_wait_s
        self.log = log
        self.warn = warn or (lambda line: print(line, file=sys.stderr, flush=True))
        self.plans = {}  # plan_id -> (client plan, examples): a plan never changes
        self.broadcasts = {}  # url -> (etag, bytes), the last few, revalidated on use
        self.served = []  # {"plan_id", "round"} most recent first (the check-in's `served`)

    def sleep(self, seconds):
        time.sleep(min(seconds, self.max_wait_s))

    def request(self, method, url, body=None, headers=None, deadline_ms=None):
        """One request with the SDK's retries; returns (status, headers, body bytes) for 2xx and 304."""
        for attempt in range(1, TRIES + 1):
            req = urllib.request.Request(url, data=body, method=method, headers=headers or {})
            try:
                with urllib.request.urlopen(req, timeout=TIMEOUT_S) as res:
                    raw = res.read()
                    if res.headers.get("Content-Encoding") == "gzip":
                        raw = gzip.decompress(raw)
                    return res.status, res.headers, raw
            except urllib.error.HTTPError as e:
                if e.code == 304:
                    return 304, e.headers, b""
                error = self._error(e)
            except (urllib.error.URLError, TimeoutError, ConnectionError) as e:
                reason = getattr(e, "reason", e)
                error = HttpError(0, "NETWORK", f"{method} {url}: {reason}")
            if not error.transient or attempt == TRIES:
                raise error
            backoff = min(30.0, 0.5 * 2 ** (attempt - 1))
            wait = backoff / 2 + random.random() * backoff / 2
            wait = max(wait, error.retry_after or 0)
            if deadline_ms is not None and time.time() + wait > deadline_ms / 1000:
                raise error
            self.sleep(wait)
        raise AssertionError("unreachable")

    @staticmethod
    def _error(e):
        text = e.read()
        try:
            if e.headers.get("Content-Encoding") == "gzip":
                text = gzip.decompress(text)
            err = json.loads(text)["error"]
            code, message = err["code"], err["message"]
            details = "; ".join(f"{d.get('path')}: {d.get('message')}" for d in err.get("details") or [])
            message = f"{message} {details}".strip()
        except (ValueError, KeyError, TypeError, OSError):
            code, message = "HTTP_ERROR", f"HTTP {e.code}"
        return HttpError(e.code, code, message, _retry_after(e.headers.get("Retry-After")))

    def checkin(self):
        body = json.dumps({"device_id": self.device_id, "served": self.served}).encode()
        url = f"{self.server}/v1/populations/{self.population}/checkin"
        _, _, raw = self.request("POST", url, body, {"Content-Type": "application/json"})
        return json.loads(raw)

    def client_plan(self, assignment):
        plan_id = assignment["plan_id"]
        if plan_id not in self.plans:
            _, _, raw = self.request("GET", assignment["client_plan_url"], headers={"Accept-Encoding": "gzip"})
            plan = check_client_plan(json.loads(raw))
            examples = read_examples_csv(self.data_text, plan["client_data"]["element"])
            self.plans[plan_id] = (plan, examples)
        return self.plans[plan_id]

    def broadcast(self, url):
        headers = {"Accept-Encoding": "gzip"}
        cached = self.broadcasts.pop(url, None)
        if cached and cached[0]:
            headers["If-None-Match"] = cached[0]
        status, res_headers, raw = self.request("GET", url, headers=headers)
        entry = cached if status == 304 and cached else (res_headers.get("ETag"), raw)
        self.broadcasts[url] = entry  # re-inserted: the most recently used last
        while len(self.broadcasts) > BROADCASTS_KEPT:
            self.broadcasts.pop(next(iter(self.broadcasts)))
        return entry[1]

    def task(self, a):
        """Runs one assignment to its end; returns a human line saying how it ended."""
        where = f"round {a['round']}.{a['attempt']} of plan {a['plan_id']}"
        if "secure_aggregation" in a:
            # SecAgg+ needs X25519 and AES-GCM, which Python's standard library lacks.
            raise ClientError(
                "SECAGG_UNSUPPORTED",
                f"{where} masks its secure sums ({a['secure_aggregation'].get('protocol')}); this client "
                "runs only plans without SecAgg masking (--secure-aggregation none)",
            )
        plan, examples = self.client_plan(a)
        if examples["count"] == 0:
            # The SDK abandons such a task; a device that never has data has no business checking in.
            raise ClientError("DATA_INVALID", "the examples file holds no examples")
        broadcast = self.broadcast(a["broadcast_url"])
        if time.time() * 1000 >= a["deadline"]:
            return f"abandoned {where}: past its deadline"
        bundle = run_work(plan, broadcast, examples)
        headers = {
            "Authorization": f"Bearer {a['token']}",
            "X-Device-Credential": self.device_id,
            "Content-Type": "application/octet-stream",
            "Content-Encoding": "gzip",
        }
        # The very same bytes on every try, so that a retry of an accepted upload answers UPLOAD_DUPLICATE.
        body = gzip.compress(bundle, mtime=0)
        try:
            self.request("POST", a["upload_url"], body, headers, deadline_ms=a["deadline"])
            outcome = "completed"
        except HttpError as e:
            if e.code == "UPLOAD_DUPLICATE":
                outcome = "completed (duplicate upload)"
            elif e.code in ("UPLOAD_LATE", "TOKEN_INVALID", "TOKEN_TASK_MISMATCH", "TOKEN_REUSED"):
                return f"task of {where} is over: {e.code}"
            else:
                raise
        self.served = [{"plan_id": a["plan_id"], "round": a["round"]}] + [
            s for s in self.served if s["plan_id"] != a["plan_id"]
        ][: MAX_SERVED - 1]
        return f"{outcome} {where}: uploaded {len(bundle)} bytes"

    def run(self, tasks):
        """Takes part in rounds until `tasks` uploads were accepted."""
        done = 0
        while done < tasks:
            try:
                answer = self.checkin()
            except HttpError as e:
                if not e.transient:
                    raise
                self.warn(f"check-in failed: {e}; trying again in {min(5, self.max_wait_s):g} s")
                self.sleep(5)
                continue
            if "retry" in answer:
                window = answer["retry"]
                wait = window["min_seconds"] + random.random() * (window["max_seconds"] - window["min_seconds"])
                self.log(f"no task: wait {min(wait, self.max_wait_s):.1f} s")
                self.sleep(wait)
                continue
            if "session" in answer:
                # A stateful program's session (docs/stateful.md): this client runs plans only, so it leaves
                # at once rather than hold a place in the cohort until the server times it out.
                grant = answer["session"]
                try:
                    self.request("DELETE", grant["session_url"], headers={"Authorization": f"Bearer {grant['token']}"})
                    self.warn(f"left session {grant['session_id']}: stateful programs are not supported")
                except HttpError as e:
                    self.warn(f"could not leave session {grant['session_id']}: {e}")
                self.sleep(5)
                continue
            try:
                line = self.task(answer["assignment"])
            except HttpError as e:
                if e.code in ("PLAN_NOT_FOUND", "ROUND_NOT_FOUND") or e.transient:
                    self.warn(f"task dropped: {e}")
                    continue
                raise
            self.log(line)
            if line.startswith("completed"):
                done += 1
            else:
                self.sleep(1)  # the next check-in answers after the round moved on
        return done
