"""`make-tiny-model --pretrain`: a seeded warm-up on the offline corpus that lowers held-out loss."""

from __future__ import annotations

import shutil

from tbn_train.cli import main
from tbn_train.pretrain import pretrain


def test_pretraining_lowers_held_out_loss_and_is_seeded(llama_dir, tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    shutil.copytree(llama_dir, a)
    shutil.copytree(llama_dir, b)
    losses = pretrain(a, steps=3, seed=0)
    assert losses["held_out_loss_after"] < losses["held_out_loss_before"]
    assert pretrain(b, steps=3, seed=0) == losses
    assert (a / "model.safetensors").read_bytes() == (b / "model.safetensors").read_bytes()
    assert (a / "model.safetensors").read_bytes() != (llama_dir / "model.safetensors").read_bytes()


def test_zero_pretrain_steps_is_refused(tmp_path, capsys):
    assert main(["make-tiny-model", str(tmp_path / "m"), "--pretrain", "--pretrain-steps", "0"]) == 2
    assert "--pretrain-steps must be >= 1" in capsys.readouterr().err and not (tmp_path / "m").exists()
