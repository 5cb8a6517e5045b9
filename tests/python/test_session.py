"""Sessions: logits without a copy, what compression keeps, state files shared with the CLI, forks."""
import pytest
import torch

import sentinel_kv as skv

from conftest import run_cli, wiki_text


def test_append_returns_the_logits_and_compression_frees_entries(model):
    ids = model.tokenizer.encode(wiki_text(4000))[:600]
    full = model.session()
    squeezed = model.session(compress="streaming", ratio=0.75, sinks=4)
    last = full.append(ids)
    squeezed.append(ids)
    assert last.shape == (model.n_vocab,) and last.dtype == torch.float32
    assert full.logits.data_ptr() == last.data_ptr()  # the engine's tensor, not a copy
    assert full.positions.tolist() == list(range(600))
    kept = squeezed.positions
    assert kept[:4].tolist() == [0, 1, 2, 3] and kept[-1] == 599 and len(kept) <= 151
    assert squeezed.kv_bytes * 3 < full.kv_bytes
    assert squeezed.stats["achieved_ratio"] == pytest.approx(1 - len(kept) / 600)


def test_appending_in_pieces_equals_appending_at_once(model):
    ids = model.tokenizer.encode(wiki_text(3000))[:300]
    # The stream layout's plan is fixed by token positions, so how the text is cut cannot change it
    # (the default heavy layout evicts between passes: pieces of 7 read differently by design).
    whole = model.session(compress="sentinel", ratio=0.5, layout="stream").append(ids)
    pieces = model.session(compress="sentinel", ratio=0.5, layout="stream")
    for start in range(0, 300, 7):
        last = pieces.append(ids[start:start + 7])
    # Passes of 7 tokens run the few-row kernels, one of 300 a GEMM: the sums round differently.
    torch.testing.assert_close(last, whole, atol=1e-2, rtol=0)
    assert int(last.argmax()) == int(whole.argmax())


def test_saved_session_continues_exactly_and_the_cli_reads_its_file(model, tmp_path):
    text = wiki_text(2500)
    ids = model.tokenizer.encode(text)
    more = model.tokenizer.encode(" The next part of the article", add_bos=False)
    session = model.session(compress="sentinel", ratio=0.5, layout="stream")  # heavy's plan cannot be saved
    session.append(ids)
    path = tmp_path / "doc.state"
    assert session.save(path) == path.stat().st_size
    expected = session.append(more)
    restored = model.load_session(path)
    assert restored.compression.compress == "sentinel" and restored.tokens == ids
    torch.testing.assert_close(restored.append(more), expected, atol=1e-5, rtol=0)
    # The same file continues under `sentinel generate --load-state` (the prompt extends the saved text).
    r = run_cli("generate", "--prompt", text + " The next part", "--load-state", str(path), "-n", "4",
                "--compress", "sentinel", "--layout", "stream", "--ratio", "0.5", "--json")
    assert '"text"' in r.stdout


def test_fork_asks_one_compressed_document_many_questions(model):
    doc = model.session(compress="streaming", ratio=0.5)
    doc.append(wiki_text(3000))
    n_doc = len(doc.tokens)
    answers = []
    for question in ["\nQ: What is the article about?\nA:", "\nQ: Who is mentioned first?\nA:"]:
        branch = doc.fork()
        answers.append(branch.generate(question, max_tokens=8))
        assert len(doc.tokens) == n_doc  # the document session is untouched
    alone = model.session(compress="streaming", ratio=0.5)
    alone.append(doc.tokens)
    assert alone.generate("\nQ: Who is mentioned first?\nA:", max_tokens=8).tokens == answers[1].tokens


@pytest.mark.parametrize("compress", ["h2o", "sentinel"])  # sentinel: its default layout, heavy
def test_sessions_that_evict_by_attention_refuse_to_save_and_name_the_layout_that_can(model, tmp_path, compress):
    session = model.session(compress=compress, ratio=0.5)
    session.append(wiki_text(500))
    with pytest.raises(ValueError, match='cannot be saved.*layout="stream"'):
        session.save(tmp_path / "x.state")
    with pytest.raises(ValueError, match='cannot be forked.*layout="stream"'):
        session.fork()


def test_a_closed_session_refuses_every_call(model):
    with model.session() as session:
        session.append([1, 2, 3])
    assert session.closed
    for call in (lambda: session.append([4]), lambda: session.positions, lambda: session.generate("x"),
                 lambda: session.fork()):
        with pytest.raises(ValueError, match="closed"):
            call()


def test_kv_dtype_is_chosen_per_call(model):
    ids = model.tokenizer.encode(wiki_text(2000))[:256]
    f16 = model.session()  # the quantized path stores f16 by default, as llama.cpp
    q8 = model.session(kv_dtype="q8_0", compress="streaming", ratio=0.5)
    f16.append(ids)
    q8.append(ids)
    assert q8.stats["kv_bytes_uncompressed"] * 64 == f16.kv_bytes * 34  # 34 bytes per 32 values
    again = model.session()
    again.append(ids)
    assert again.kv_bytes == f16.kv_bytes  # the model's own storage is back after the q8_0 calls
    with pytest.raises(ValueError, match="q4"):
        model.session(kv_dtype="q4")


def test_a_streamed_answer_is_part_of_the_session(model, tmp_path):
    session = model.session(compress="streaming", ratio=0.5)
    session.append(wiki_text(1500))
    before = len(session.tokens)
    stream = session.stream("\nIn short,", max_tokens=12, ignore_eos=True)
    text = "".join(stream)
    assert stream.result.decode_tokens_per_second > 0 and text == stream.result.text
    question = model.tokenizer.encode("\nIn short,", add_bos=False)
    # Read: the document, the question, every generated token but the last (sampled, never fed).
    assert session.tokens[before:] == question + stream.result.tokens[:-1]
    session.save(tmp_path / "s.state")
    assert model.load_session(tmp_path / "s.state").tokens == session.tokens
    assert session.fork().tokens == session.tokens


class Explodes(skv.Policy):
    def score(self, view):
        raise RuntimeError("boom")


def test_a_session_whose_policy_raised_is_closed(model):
    session = model.session(Explodes(ratio=0.5))
    with pytest.raises(RuntimeError, match="boom"):
        session.append(model.tokenizer.encode(wiki_text(1000)))
    assert session.closed
    with pytest.raises(ValueError, match="closed by an error"):
        session.append([1, 2])
