"""Bounded load (ctest label `slow`): 16 concurrent openai clients against a server with 8 slots
and a 16-deep queue, mixing chat and completions, streaming and not, full and compressed, with
careless clients mixed in: streams dropped after a few tokens, and connections that send half a
request header and go quiet. Zero failed requests, resident memory flat after the first minute
(within 10%; within 15% + 64 MiB of the first half's peak in the one-minute default), the server
healthy afterwards. Prints one JSON line with the figures: requests, failures, p50/p99 latency, RSS
over time (docs/server.md records them). SENTINEL_LOAD_SECONDS=600 is the ten-minute soak;
SENTINEL_LOAD_OUT=FILE also writes the JSON there."""
import json
import os
import random
import socket
import statistics
import threading
import time

from conftest import Server

CLIENTS = int(os.environ.get("SENTINEL_LOAD_CLIENTS", 16))
SECONDS = float(os.environ.get("SENTINEL_LOAD_SECONDS", 60))


def test_sixteen_clients_with_careless_ones(document):
    server = Server("--parallel", 8, "--queue", 16, "--ctx", 2048, "--cache-mib", 64)
    try:
        results = {"ok": 0, "failed": [], "tokens": 0, "latency_s": [], "dropped": 0, "half_open": 0}
        lock = threading.Lock()
        started = time.time()
        rss = [(0.0, server.rss_mib())]
        stop_at = started + SECONDS

        def careless(k):
            """Half-sent headers left to time out, and streams abandoned after a few tokens."""
            rng = random.Random(1000 + k)
            while time.time() < stop_at:
                quiet = [socket.create_connection(("127.0.0.1", server.port)) for _ in range(rng.randrange(5, 20))]
                for s in quiet:
                    s.sendall(b"POST /v1/completions HTTP/1.1\r\nHost: x\r\n")
                time.sleep(rng.uniform(1, 4))
                for s in quiet:
                    s.close()
                try:
                    stream = server.client.completions.create(model="any", prompt=document[:300], max_tokens=64,
                                                              stream=True)
                    for i, _ in enumerate(stream):
                        if i == 2:
                            break
                    stream.close()
                except Exception as e:
                    with lock:
                        results["failed"].append("careless: " + repr(e))
                with lock:
                    results["half_open"] += len(quiet)
                    results["dropped"] += 1

        def client(k):
            rng = random.Random(k)
            while time.time() < stop_at:
                compression = rng.choice([None, {"method": "sentinel", "ratio": 0.5}, {"method": "sentinel", "ratio": 0.75},
                                          {"method": "streaming", "ratio": 0.5}])
                body = {"compression": compression} if compression else {}
                start = rng.randrange(0, len(document) - 800)
                text = document[start:start + rng.choice([100, 400, 800])]
                t0 = time.time()
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
                        results["latency_s"].append(time.time() - t0)
                except Exception as e:  # every failure is reported, none is expected
                    with lock:
                        results["failed"].append(repr(e))

        threads = [threading.Thread(target=client, args=(k,)) for k in range(CLIENTS)]
        threads += [threading.Thread(target=careless, args=(k,)) for k in range(2)]
        for t in threads:
            t.start()
        while any(t.is_alive() for t in threads):
            time.sleep(2)
            rss.append((time.time() - started, server.rss_mib()))
        for t in threads:
            t.join()
        metrics = server.metrics()
        latency = sorted(results["latency_s"])
        values = [m for _, m in rss]
        after_first_minute = [m for t, m in rss if t >= 60] or values[-1:]
        second_minute = [m for t, m in rss if 60 <= t < 120] or after_first_minute
        last_minute = [m for t, m in rss if t >= SECONDS - 60] or values[-1:]
        summary = {"clients": CLIENTS, "seconds": SECONDS, "requests_ok": results["ok"],
                   "requests_failed": len(results["failed"]), "requests_per_s": results["ok"] / SECONDS,
                   "latency_p50_s": round(statistics.median(latency), 2) if latency else None,
                   "latency_p99_s": round(latency[int(0.99 * (len(latency) - 1))], 2) if latency else None,
                   "streams_dropped": results["dropped"], "half_open_connections": results["half_open"],
                   "rss_mib_start": round(values[0]), "rss_mib_peak": round(max(values)), "rss_mib_end": round(values[-1]),
                   "rss_mib_first_half_peak": round(max(values[: len(values) // 2])),
                   "rss_mib_at_one_minute": round(after_first_minute[0]),
                   "rss_mib_median_second_minute": round(statistics.median(second_minute)),
                   "rss_mib_median_last_minute": round(statistics.median(last_minute)),
                   "rss_mib_over_time": [[round(t), round(m)] for t, m in rss[::15]],
                   "rejected_503": metrics["requests_rejected_total"], "achieved_ratio": metrics["achieved_ratio"],
                   "git_rev": os.popen("git -C " + os.path.dirname(__file__) + " rev-parse --short HEAD").read().strip(),
                   "cpu": next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo")
                                if line.startswith("model name")), "?"), "cores": os.cpu_count()}
        print(json.dumps(summary))
        if os.environ.get("SENTINEL_LOAD_OUT"):
            with open(os.environ["SENTINEL_LOAD_OUT"], "w") as f:
                json.dump(summary, f, indent=1)
        assert not results["failed"], results["failed"][:5]
        assert results["ok"] > CLIENTS
        # Bounded: once warm the footprint stops growing (caches are capped and finished sequences
        # freed). A soak of three minutes or more: the last minute's median within 10% of the second
        # minute's (single samples swing by ~10% as requests come and go: 305-348 MiB in the
        # 2026-12-07 soak, docs/server.md); the one-minute default: within 15% + 64 MiB of its first
        # half's peak.
        if SECONDS >= 180:
            assert summary["rss_mib_median_last_minute"] <= summary["rss_mib_median_second_minute"] * 1.10, summary
        else:
            assert max(values) < summary["rss_mib_first_half_peak"] * 1.15 + 64, summary
        assert server.get("/health") == (200, {"status": "ok"})
        assert metrics["requests_processing"] == 0 and metrics["requests_deferred"] == 0
    finally:
        server.stop()
