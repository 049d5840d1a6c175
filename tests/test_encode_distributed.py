"""`avdit encode` under torchrun: two ranks share the shards (shard k is rank k % 2's) and write what one process
writes, bit for bit, and the one index; a rerun skips the shards on disk."""

import json
import os
import subprocess
import sys

import pytest
import torch
from safetensors.torch import load_file

from avdit.cli import main
from avdit.codecs.shards import SHARD_INDEX

ENCODE = ["encode", "bouncing-tones", "--shard-size", "4", "--device", "cpu"]  # 12 clips: 3 shards, the bundled codecs


def torchrun(out, port=29531):
    """Two CPU ranks over gloo, one thread each. ``--num-clips``: torchrun reads ``--num`` as its own --numa-binding."""
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", str(port),
               "-m", "avdit.cli", *ENCODE, "--num-clips", "12", "--out", str(out)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120,
                            env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.count("12 clips in 3 shards") == 1  # rank 0 reports
    assert "8/8" in result.stderr  # rank 0's progress: shards 0 and 2, 4 clips each


@pytest.fixture(scope="module")
def one_process(tmp_path_factory):
    """The same encode in this process, on one thread as each rank."""
    out = tmp_path_factory.mktemp("one") / "latents"
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        assert main([*ENCODE, "--num", "12", "--out", str(out)]) == 0
    finally:
        torch.set_num_threads(threads)
    return out


def assert_same_latents(a, b):
    assert json.loads((a / SHARD_INDEX).read_text()) == json.loads((b / SHARD_INDEX).read_text())
    assert sorted(p.name for p in a.iterdir()) == sorted(p.name for p in b.iterdir())
    for k in range(3):
        x, y = load_file(a / f"shard_{k:05d}.safetensors"), load_file(b / f"shard_{k:05d}.safetensors")
        assert x.keys() == y.keys() == {"video", "audio"}
        for name in x:
            assert torch.equal(x[name], y[name]), (k, name)


@pytest.mark.slow  # two processes under torchrun (11 s): kept out of the 5-minute default suite, where
# tests/test_train.py's test_fsdp_equals_one_process runs two ranks under torchrun
def test_two_ranks_write_what_one_process_writes_and_resume(one_process, tmp_path):
    out = tmp_path / "latents"
    torchrun(out)
    assert_same_latents(one_process, out)
    assert json.loads((out / SHARD_INDEX).read_text())["complete"]

    # interrupted before rank 1's shard was written: the rerun writes it and leaves rank 0's as they are
    (out / "shard_00001.safetensors").unlink()
    index = json.loads((out / SHARD_INDEX).read_text())
    (out / SHARD_INDEX).write_text(json.dumps({key: index[key] for key in
                                               ("data", "split", "clips", "shard_size", "codec_digest")}
                                              | {"complete": False}))
    kept = {k: (out / f"shard_{k:05d}.safetensors").stat().st_mtime_ns for k in (0, 2)}
    torchrun(out)
    assert {k: (out / f"shard_{k:05d}.safetensors").stat().st_mtime_ns for k in (0, 2)} == kept
    assert_same_latents(one_process, out)
