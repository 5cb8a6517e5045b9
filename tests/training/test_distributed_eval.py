"""`eval lm` and `eval gen` under torchrun: the cells are split over two ranks and rank 0 merges one
results file, which must hold what a single process writes (same records in the same order; only the
timings and the environment's clock differ), and print the same table."""
import json

import pytest

from conftest import SHARED_DATA, TINY, TORCHRUN, cli, free_port, run

VARYING = {"seconds", "environment"}  # wall-clock fields: differ between any two runs


def records(path):
    return [{k: v for k, v in json.loads(line).items() if k not in VARYING} for line in path.read_text().splitlines()]


def single_and_distributed(args, tmp_path):
    one, two = tmp_path / "one.jsonl", tmp_path / "two.jsonl"
    single = run([cli(), *args, "-o", str(one)])
    distributed = run(TORCHRUN + ["--nproc-per-node", "2", "--master-addr", "127.0.0.1", "--master-port", str(free_port()),
                                  "--no-python", cli(), *args, "-o", str(two)])
    assert "rank 0 of 2 runs" in distributed.stderr and "rank 1 of 2 runs" in distributed.stderr
    return single, distributed, records(one), records(two)


def test_eval_lm_split_over_ranks_writes_the_single_process_file(train_text, tmp_path):
    args = ["eval", "lm", "-m", str(TINY), "-d", str(train_text), "--methods", "full,sentinel,strided,streaming,h2o",
            "--ratios", "0.25,0.5", "--settings", "paper,stream", "--ctx", "64", "--block", "64", "--max-tokens", "400",
            "-t", "1"]
    single, distributed, one, two = single_and_distributed(args, tmp_path)
    assert len(one) == 16
    assert one == two
    assert single.stdout == distributed.stdout  # the table rank 0 prints


def test_eval_gen_split_over_ranks_writes_the_single_process_file(tmp_path):
    book = SHARED_DATA / "gutenberg" / "pg84_frankenstein.txt"
    if not book.exists():
        pytest.fail(f"{book} is missing; set SENTINEL_SHARED_DATA to the shared corpora")
    args = ["eval", "gen", "-m", str(TINY), "-d", str(book), "--methods", "full,strided,streaming", "--ratios", "0.5",
            "--prefix", "48", "--new-tokens", "8", "--docs-per-file", "2", "-t", "1"]
    _, _, one, two = single_and_distributed(args, tmp_path)
    assert len(one) == 3 and all(len(r["documents"]) == 2 for r in one)
    assert one == two
