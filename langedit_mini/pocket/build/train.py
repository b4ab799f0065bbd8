"""Train the pocket tokenizer and model from the corpus, deterministically, on CPU.

The recipe: a byte-level BPE tokenizer (``tokenizers``) on the corpus, then a small
``transformers.LlamaForCausalLM`` (the same module names as Llama-3, so the editing code path is
the one real models take) trained from scratch with AdamW on every corpus line, loss on every
token. ``TrainConfig`` holds every knob; ``python -m langedit_mini.pocket.build`` runs it all.

Two models (``PRESETS``): ``pocket`` (4 layers, d_k 1024; the fast model of the tests and live
chapters) and ``pocket-wide`` (5 layers, d_k 3584: the paper's shape, 6 languages x 100 edits, lands at
its density of about 0.17 edits per key dimension, over a band of three edited layers). Training
checkpoints after every epoch (weights, optimiser, schedule, random states) and resumes from the
last one, so a long run can be done in chunks; a resumed run gives the weights an uninterrupted
one gives.
"""

from __future__ import annotations

import json
import math
import random
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

SPECIAL_TOKENS = ["<pad>", "<s>", "</s>"]


@dataclass
class TrainConfig:
    vocab_size: int = 1024  # BPE vocabulary: small, so subjects span several tokens (see pocket chapter)
    hidden_size: int = 192  # d_v: the residual stream
    intermediate_size: int = 1024  # d_k: MLP key dimension (room for 600+ edits in the null space)
    num_hidden_layers: int = 4
    num_attention_heads: int = 6
    num_key_value_heads: int = 2
    max_position_embeddings: int = 128
    epochs: int = 12  # passes over the corpus
    batch_size: int = 64  # lines per step
    learning_rate: float = 3e-3
    warmup_steps: int = 200
    weight_decay: float = 0.01
    threads: int = 2  # torch CPU threads (the project's machines have 2 cores)
    seed: int = 0


#: The two pocket models. ``pocket-wide``: hidden 256 and 5 layers keep float32 weights under 64 MB
#: (14.8M parameters, 59 MB) with d_k = 3584 = 3.5 x 1024, Llama-3-8B's key-to-hidden ratio being 3.5.
PRESETS = {
    "pocket": TrainConfig(),
    "pocket-wide": TrainConfig(
        hidden_size=256,
        intermediate_size=3584,
        num_hidden_layers=5,
        num_attention_heads=8,
        num_key_value_heads=2,
        epochs=8,
        learning_rate=2e-3,
    ),
}


def train_tokenizer(lines: list[str], vocab_size: int, directory: Path):
    """Byte-level BPE on the corpus; saved as ``tokenizer.json`` loadable with AutoTokenizer."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tokenizer = Tokenizer(models.BPE())
    # Punctuation is isolated before byte-level splitting, so no token spans a prompt's final "：" or
    # ":" and the answer after it: prompt and answer tokenized apart give the tokens seen in training.
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.Punctuation("isolated"), pre_tokenizers.ByteLevel(add_prefix_space=False)]
    )
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIAL_TOKENS,
        show_progress=False,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tokenizer.train_from_iterator(lines, trainer=trainer)
    tokenizer.post_processor = processors.TemplateProcessing(single="<s> $A", special_tokens=[("<s>", 1)])
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        bos_token="<s>",
        eos_token="</s>",
        pad_token="<pad>",
        model_max_length=128,
        clean_up_tokenization_spaces=False,
    )
    directory.mkdir(parents=True, exist_ok=True)
    fast.save_pretrained(directory)
    return fast


def model_config(config: TrainConfig, tokenizer):
    from transformers import LlamaConfig

    return LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=config.hidden_size,
        intermediate_size=config.intermediate_size,
        num_hidden_layers=config.num_hidden_layers,
        num_attention_heads=config.num_attention_heads,
        num_key_value_heads=config.num_key_value_heads,
        max_position_embeddings=config.max_position_embeddings,
        tie_word_embeddings=True,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        rms_norm_eps=1e-5,
    )


def batches(token_lists: list[list[int]], batch_size: int, pad_id: int, rng: random.Random):
    """Length-bucketed, shuffled batches: (input_ids, attention_mask, labels) with padding masked out."""
    order = sorted(range(len(token_lists)), key=lambda i: (len(token_lists[i]), i))
    chunks = [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
    rng.shuffle(chunks)
    for chunk in chunks:
        width = max(len(token_lists[i]) for i in chunk)
        ids = torch.full((len(chunk), width), pad_id, dtype=torch.long)
        mask = torch.zeros((len(chunk), width), dtype=torch.long)
        for row, index in enumerate(chunk):
            tokens = token_lists[index]
            ids[row, : len(tokens)] = torch.tensor(tokens)
            mask[row, : len(tokens)] = 1
        labels = ids.masked_fill(mask == 0, -100)
        yield ids, mask, labels


CHECKPOINT = "checkpoint.pt"


def train_model(
    lines: list[str],
    tokenizer,
    config: TrainConfig,
    log=print,
    checkpoint_dir: Path | None = None,
    stop_after_epochs: int | None = None,
):
    """Train from scratch or resume; returns the model (eval mode), the log, and whether it finished.

    ``checkpoint_dir``: after every epoch the state goes to ``checkpoint_dir/checkpoint.pt``, and a
    run that finds one there continues from it (its config must be the same). ``stop_after_epochs``:
    return after this many epochs in this call (a chunk), checkpoint written; run again to go on.
    """
    from transformers import LlamaForCausalLM

    torch.manual_seed(config.seed)
    torch.set_num_threads(config.threads)
    rng = random.Random(config.seed)
    token_lists = [ids + [tokenizer.eos_token_id] for ids in tokenizer(lines)["input_ids"]]
    model = LlamaForCausalLM(model_config(config, tokenizer))
    steps_per_epoch = math.ceil(len(token_lists) / config.batch_size)
    total_steps = steps_per_epoch * config.epochs
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay, betas=(0.9, 0.98)
    )

    def learning_rate(step):
        if step < config.warmup_steps:
            return (step + 1) / config.warmup_steps
        progress = (step - config.warmup_steps) / max(1, total_steps - config.warmup_steps)
        return 0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * progress))

    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, learning_rate)
    history, step, first_epoch, elapsed_before = [], 0, 0, 0.0
    path = Path(checkpoint_dir) / CHECKPOINT if checkpoint_dir is not None else None
    if path is not None and path.exists():
        state = torch.load(path, weights_only=True)  # tensors and plain containers only
        if state["config"] != asdict(config):
            raise ValueError(
                f"the checkpoint {path} was made with another training config ({state['config']}); "
                "delete it to start over, or pass the same config"
            )
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        rng.setstate(state["python_rng"])
        torch.set_rng_state(state["torch_rng"])
        history, step, first_epoch = state["history"], state["step"], state["epoch"]
        elapsed_before = history[-1]["seconds"] if history else 0.0
        log(f"resumed from {path} after epoch {first_epoch}")
    start = time.perf_counter()
    model.train()
    last_epoch = config.epochs if stop_after_epochs is None else min(config.epochs, first_epoch + stop_after_epochs)
    for epoch in range(first_epoch, last_epoch):
        running, count = 0.0, 0
        for ids, mask, labels in batches(token_lists, config.batch_size, tokenizer.pad_token_id, rng):
            loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            scheduler.step()
            running, count, step = running + loss.item(), count + 1, step + 1
        elapsed = elapsed_before + time.perf_counter() - start
        history.append({"epoch": epoch + 1, "step": step, "loss": running / count, "seconds": elapsed})
        log(f"epoch {epoch + 1}/{config.epochs}: loss {running / count:.4f}, {elapsed:.0f} s")
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            state = {
                "config": asdict(config),
                "model": model.state_dict(),
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(),
                "python_rng": rng.getstate(),
                "torch_rng": torch.get_rng_state(),
                "history": history,
                "step": step,
                "epoch": epoch + 1,
            }
            torch.save(state, path.with_suffix(".tmp"))
            path.with_suffix(".tmp").replace(path)
    model.eval()
    finished = (history[-1]["epoch"] if history else 0) >= config.epochs
    return model, history, finished


def save_model(model, tokenizer, directory: Path, config: TrainConfig, history: list[dict]) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(directory, safe_serialization=True)
    tokenizer.save_pretrained(directory)
    (directory / "training.json").write_text(
        json.dumps({"config": asdict(config), "history": history}, indent=1) + "\n", encoding="utf-8"
    )
