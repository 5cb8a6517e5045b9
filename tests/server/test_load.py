"""Bounded load (ctest label `slow`): 16 concurrent openai clients for a minute against a server
with 8 slots and a 16-deep queue, mixing chat and completions, streaming and not, full and
compressed. Zero failed requests, resident memory bounded, the server healthy afterwards. Prints
one JSON line with the figures (docs/server.md records them)."""
import json
import os
import random
import threading
import time

from conftest import Server

CLIENTS = int(os.environ.get("SENTINEL_LOAD_CLIENTS", 16))
SECONDS = float(os.environ.get("SENTINEL_LOAD_SECONDS", 60))


def test_sixteen_clients_for_a_minute(document):
    server = Server("--parallel", 8, "--queue", 16, "--ctx", 2048, "--cache-mib", 64)
    try:
        results = {"ok": 0, "failed": [], "tokens": 0}
        lock = threading.Lock()
        rss = [server.rss_mib()]
        stop_at = time.time() + SECONDS

        def client(k):
            rng = random.Random(k)
            while time.time() < stop_at:
                compression = rng.choice([None, {"method": "sentinel", "ratio": 0.5}, {"method": "sentinel", "ratio": 0.75},
                                          {"method": "streaming", "ratio": 0.5}])
                body = {"compression": compression} if compression else {}
                start = rng.randrange(0, len(document) - 800)
                text = document[start:start + rng.choice([100, 400, 800])]
                try:
                    if rng.random() < 0.5:
                        kw = dict(model="any", messages=[{"role": "user", "content": text + "\nSummarise."}],
                                  max_tokens=rng.randrange(4, 32), temperature=0.7, seed=k, extra_body=body)
                        if rng.random() < 0.5:
                            n = sum(1 for _ in server.client.chat.completions.create(stream=True, **kw))
                        else:
                            n = server.client.chat.completions.create(**kw).usage.completion_tokens
                    else:
                        kw = dict(model="any", prompt=text, max_tokens=rng.randrange(4, 32), temperature=0.7, seed=k,
                                  extra_body=body)
                        if rng.random() < 0.5:
                            n = sum(1 for _ in server.client.completions.create(stream=True, **kw))
                        else:
                            n = server.client.completions.create(**kw).usage.completion_tokens
                    with lock:
                        results["ok"] += 1
                        results["tokens"] += n
                except Exception as e:  # every failure is reported, none is expected
                    with lock:
                        results["failed"].append(repr(e))

        threads = [threading.Thread(target=client, args=(k,)) for k in range(CLIENTS)]
        for t in threads:
            t.start()
        while any(t.is_alive() for t in threads):
            time.sleep(2)
            rss.append(server.rss_mib())
        for t in threads:
            t.join()
        metrics = server.metrics()
        summary = {"clients": CLIENTS, "seconds": SECONDS, "requests_ok": results["ok"],
                   "requests_failed": len(results["failed"]), "requests_per_s": results["ok"] / SECONDS,
                   "rss_mib_start": round(rss[0]), "rss_mib_peak": round(max(rss)), "rss_mib_end": round(rss[-1]),
                   "rss_mib_first_half_peak": round(max(rss[: len(rss) // 2])),
                   "rejected_503": metrics["requests_rejected_total"], "achieved_ratio": metrics["achieved_ratio"]}
        print(json.dumps(summary))
        assert not results["failed"], results["failed"][:5]
        assert results["ok"] > CLIENTS
        # Bounded: after the first half-minute the footprint stops growing (caches are capped and
        # finished sequences freed); the margin covers allocator noise.
        assert max(rss) < summary["rss_mib_first_half_peak"] * 1.15 + 64, summary
        assert server.get("/health") == (200, {"status": "ok"})
        assert metrics["requests_processing"] == 0 and metrics["requests_deferred"] == 0
    finally:
        server.stop()
