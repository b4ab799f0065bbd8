"""Statistics at the scale users run: a pass resumed from its checkpoint, files to share with their
metadata, and a data-parallel pass over two CPU processes (gloo, loopback) equal to one process."""

import os
import subprocess
import sys
import textwrap

import pytest
import torch
import transformers
from test_stats import tiny_model

from langedit_mini.model.statistics import load_statistics, save_statistics, second_moment_pass
from langedit_mini.pocket import MODEL_DIRECTORY

TEXTS = [f"Text number {i} about the capital of country {i % 7}." for i in range(40)]


class Interrupt(Exception):
    pass


def test_an_interrupted_pass_resumes_from_its_checkpoint(tokenizer, tmp_path, monkeypatch):
    model = tiny_model("llama", tokenizer)
    whole = second_moment_pass(model, tokenizer, TEXTS, [0, 2], batch_size=4, progress=False)
    checkpoint = tmp_path / "pass.pt"
    calls = {"n": 0}
    original = model.forward

    def failing(*args, **kwargs):  # the 7th batch "crashes": 6 batches are summed, a checkpoint after 5
        calls["n"] += 1
        if calls["n"] == 7:
            raise Interrupt
        return original(*args, **kwargs)

    monkeypatch.setattr(model, "forward", failing)
    with pytest.raises(Interrupt):
        second_moment_pass(
            model, tokenizer, TEXTS, [0, 2], batch_size=4, progress=False, checkpoint=checkpoint, checkpoint_every=5
        )
    from langedit_mini.model.statistics import _read_checkpoint, _write_checkpoint

    assert checkpoint.exists() and _read_checkpoint(checkpoint)["done"] == 5
    calls["n"] = -100  # no more crashes; count the batches the resumed pass runs
    resumed = second_moment_pass(
        model, tokenizer, TEXTS, [0, 2], batch_size=4, progress=False, checkpoint=checkpoint, checkpoint_every=5
    )
    assert calls["n"] == -100 + 5  # 10 batches in all, 5 of them from the checkpoint
    assert not checkpoint.exists()
    for layer in (0, 2):
        assert resumed[layer].n_samples == whole[layer].n_samples
        assert torch.allclose(resumed[layer].covariance, whole[layer].covariance, rtol=0, atol=1e-12)
    monkeypatch.undo()
    _write_checkpoint(checkpoint, {"other": 1}, {0: torch.zeros(2, 2)}, {0: 1}, 1)
    with pytest.raises(ValueError, match="other inputs"):
        second_moment_pass(model, tokenizer, TEXTS, [0], batch_size=4, progress=False, checkpoint=checkpoint)


def test_statistics_files_carry_their_metadata_and_refuse_other_weights(tokenizer, tmp_path):
    model = tiny_model("llama", tokenizer)
    statistics = second_moment_pass(model, tokenizer, TEXTS, [1], progress=False)
    path = save_statistics(statistics, tmp_path / "c0.safetensors", model=model, corpus="test texts", texts=40)
    loaded, metadata = load_statistics(path, model=model)
    assert (
        torch.equal(loaded[1].covariance, statistics[1].covariance) and loaded[1].n_samples == statistics[1].n_samples
    )
    assert metadata["corpus"] == "test texts" and metadata["texts"] == "40" and metadata["layers"] == "[1]"
    other = tiny_model("qwen2", tokenizer)
    with pytest.raises(ValueError, match="made for other weights"):
        load_statistics(path, model=other)


def test_two_gloo_processes_give_the_statistics_of_one(tmp_path):
    script = tmp_path / "ranks.py"
    script.write_text(
        textwrap.dedent(f"""
        import sys
        import torch, torch.distributed as dist
        sys.path.insert(0, {os.path.dirname(__file__)!r})
        from test_stats import tiny_model
        import transformers
        from langedit_mini.pocket import MODEL_DIRECTORY
        from langedit_mini.model.statistics import second_moment_pass
        rank, out = int(sys.argv[1]), sys.argv[2]
        torch.set_num_threads(1)
        dist.init_process_group("gloo", init_method="tcp://127.0.0.1:" + sys.argv[3], rank=rank, world_size=2)
        tokenizer = transformers.AutoTokenizer.from_pretrained(MODEL_DIRECTORY)
        model = tiny_model("llama", tokenizer)
        texts = {TEXTS!r}
        moments = second_moment_pass(model, tokenizer, texts, [0, 2], batch_size=4, progress=False)
        torch.save({{layer: (m.covariance, m.n_samples) for layer, m in moments.items()}}, out + f"/rank{{rank}}.pt")
        dist.destroy_process_group()
    """)
    )
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = str(probe.getsockname()[1])
    env = dict(os.environ, OMP_NUM_THREADS="1")
    ranks = [
        subprocess.Popen(
            [sys.executable, str(script), str(r), str(tmp_path), port], env=env, stderr=subprocess.PIPE, text=True
        )
        for r in (0, 1)
    ]
    for process in ranks:
        _, error = process.communicate(timeout=300)
        assert process.returncode == 0, error[-2000:]
    tokenizer = transformers.AutoTokenizer.from_pretrained(MODEL_DIRECTORY)
    single = second_moment_pass(tiny_model("llama", tokenizer), tokenizer, TEXTS, [0, 2], batch_size=4, progress=False)
    for rank in (0, 1):
        merged = torch.load(tmp_path / f"rank{rank}.pt")
        for layer in (0, 2):
            covariance, samples = merged[layer]
            assert samples == single[layer].n_samples
            # float32 forward passes with other thread counts: equal to float32 rounding
            scale = single[layer].covariance.abs().max()
            assert (covariance - single[layer].covariance).abs().max() <= 1e-5 * scale
