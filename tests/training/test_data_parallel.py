"""Data-parallel `sentinel train` over c10d (Gloo), with real processes: two ranks launched by
torchrun against one process reading the same data with twice the batch must give the same loss
trajectory and the same adapter; a rank that dies or hangs must make the other fail with an error
naming the rank, within the collective timeout; resuming with another world size is refused."""
import os
import signal
import subprocess
import time

import pytest
from safetensors.torch import load_file

from conftest import TINY, TORCHRUN, cli, free_port, read_log, run, single_process_env

STEPS = 4


def train_args(data, out, batch, steps=STEPS, extra=()):
    # Stream layout with distillation: every part of the objective crosses the all-reduce. Dropout
    # off: each rank draws its own masks, so with dropout the runs are equal in distribution only.
    return [cli(), "train", str(data), "-m", str(TINY), "--layout", "stream", "--seq-len", "64", "--span-range", "4:8",
            "--sinks", "2", "--distill", "0.5", "--lora-dropout", "0", "--batch", str(batch), "--accum", "2",
            "--steps", str(steps), "--lr", "1e-3", "--sentinel-lr", "3e-3", "--warmup", "1", "--seed", "5", "-t", "1",
            "--max-tokens", "6000", "--save-every", "2", "-o", str(out), *extra]


def torchrun(nproc, args):
    return TORCHRUN + ["--nproc-per-node", str(nproc), "--master-addr", "127.0.0.1", "--master-port",
                       str(free_port()), "--no-python", *args]


def test_two_processes_equal_one_with_twice_the_batch(train_text, tmp_path):
    one, two = tmp_path / "one.st", tmp_path / "two.st"
    run(train_args(train_text, one, batch=2))
    result = run(torchrun(2, train_args(train_text, two, batch=1)))
    assert "data parallel: 2 processes, gloo backend" in result.stderr

    single, double = read_log(f"{one}.log.jsonl"), read_log(f"{two}.log.jsonl")
    assert [r["step"] for r in double] == list(range(1, STEPS + 1))
    assert all(r["world_size"] == 2 for r in double)
    for a, b in zip(single, double):
        assert abs(a["loss"] - b["loss"]) < 1e-5, (a, b)
        assert abs(a["kl"] - b["kl"]) < 1e-5 and a["kl"] > 0, (a, b)
        assert a["targets"] == b["targets"] and a["tokens"] == b["tokens"]
        assert abs(a["grad_norm"] - b["grad_norm"]) < 1e-4 * a["grad_norm"]

    first, second = load_file(str(one)), load_file(str(two))
    assert first.keys() == second.keys() and "sentinel_embeddings" in first
    for name in first:
        assert (first[name] - second[name]).abs().max().item() < 1e-6, name
    start = load_file(str(one))  # the adapter moved: an identical pair of untrained adapters proves nothing
    assert max(t.abs().max().item() for n, t in start.items() if "lora_B" in n) > 0


def test_resume_continues_exactly_and_refuses_another_world_size(train_text, tmp_path):
    whole, split = tmp_path / "whole.st", tmp_path / "split.st"
    run(torchrun(2, train_args(train_text, whole, batch=1)))
    stopped = subprocess.run(torchrun(2, train_args(train_text, split, batch=1, extra=["--stop-after", "2"])),
                             capture_output=True, text=True, env=single_process_env(), timeout=600)
    assert stopped.returncode != 0 and "interrupted after update 2" in stopped.stderr
    run(torchrun(2, train_args(train_text, split, batch=1, extra=["--resume"])))
    a, b = load_file(str(whole)), load_file(str(split))
    for name in a:
        assert (a[name] - b[name]).abs().max().item() < 1e-6, name
    assert [r["loss"] for r in read_log(f"{whole}.log.jsonl")] == pytest.approx(
        [r["loss"] for r in read_log(f"{split}.log.jsonl")], abs=1e-6)

    refused = subprocess.run(train_args(train_text, split, batch=1, extra=["--resume"]), capture_output=True, text=True,
                             env=single_process_env(), timeout=600)
    assert refused.returncode == 1
    assert "written by a job of 2 processes, this one has 1" in refused.stderr
    assert "torchrun --nproc-per-node 2" in refused.stderr


def launch_by_hand(args, port, world=2):
    """Ranks started directly with the launcher's variables: torchrun would stop the survivors itself."""
    processes = []
    for rank in range(world):
        env = single_process_env()
        env.update(RANK=str(rank), WORLD_SIZE=str(world), LOCAL_RANK=str(rank), MASTER_ADDR="127.0.0.1",
                   MASTER_PORT=str(port))
        processes.append(subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True))
    return processes


def wait_for_updates(log, n, processes, limit=120):
    deadline = time.time() + limit
    while time.time() < deadline:
        if log.exists() and len(read_log(log)) >= n:
            return
        assert all(p.poll() is None for p in processes), "a rank ended before the test stopped one"
        time.sleep(0.1)
    pytest.fail(f"{log} did not reach {n} updates in {limit} s")


@pytest.mark.parametrize("victim,how", [(1, signal.SIGKILL), (0, signal.SIGKILL), (1, signal.SIGSTOP)])
def test_a_lost_rank_ends_the_job_with_an_error_naming_the_rank(train_text, tmp_path, victim, how):
    out = tmp_path / "lost.st"
    timeout_s = 8
    args = train_args(train_text, out, batch=1, steps=100000, extra=["--dist-timeout", str(timeout_s)])
    processes = launch_by_hand(args, free_port())
    try:
        wait_for_updates(tmp_path / "lost.st.log.jsonl", 2, processes)
        processes[victim].send_signal(how)  # SIGSTOP: alive but silent, only the timeout can tell
        survivor = processes[1 - victim]
        start = time.time()
        _, stderr = survivor.communicate(timeout=timeout_s + 60)
        waited = time.time() - start
    finally:
        for p in processes:
            if p.poll() is None:
                p.kill()
            p.wait()
    assert survivor.returncode == 1, stderr
    assert f"rank {1 - victim} of 2: " in stderr and "failed" in stderr, stderr
    assert f"Rank {victim}, the other process of the job, exited or stopped responding" in stderr
    assert waited < timeout_s + 30, f"the survivor took {waited:.1f} s to give up"
