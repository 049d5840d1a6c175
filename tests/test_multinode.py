"""Training across machines: two torchrun agents (two "nodes" on this machine, gloo) equal one process."""

import os
import socket
import subprocess
import sys

import pytest

from avdit.train.loop import train
from tests.test_train import assert_same, codecs_dir, parameters, shards, tiny  # noqa: F401  (fixtures)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow  # four processes (13 s): kept out of the 5-minute default suite, where tests/test_train.py's
# test_fsdp_equals_one_process trains two ranks under torchrun
def test_two_nodes_with_gloo_equal_one_process(codecs_dir, shards, tmp_path):
    """`torchrun --nnodes 2` (a rank per node: RANK 1 has LOCAL_RANK 0) trains as one process on the same global
    batch: the rendezvous on the first node, a run folder both nodes see."""
    train(tiny(codecs_dir, data=str(shards), steps=3), tmp_path / "single", progress=False)
    port = free_port()
    agents = [subprocess.Popen(
        [sys.executable, "-m", "torch.distributed.run", "--nnodes", "2", "--node_rank", str(node),
         "--nproc_per_node", "1", "--master_addr", "127.0.0.1", "--master_port", str(port),
         "-m", "avdit.cli", "train", "--preset", "bt-tiny", "--codecs", str(codecs_dir), "--data", str(shards),
         "--steps", "3", "--batch-size", "4", "--lr", "1e-3", "--warmup", "2", "--log-every", "1",
         "--checkpoint-every", "3", "--precision", "fp32", "--self-condition-rate", "0.5", "--num-clips", "8",
         "--out", str(tmp_path / "nodes"), "--device", "cpu"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
        for node in (0, 1)]
    errors = []
    try:
        for node, agent in enumerate(agents):
            errors.append(agent.communicate(timeout=180)[1])
            assert agent.returncode == 0, f"node {node}: {errors[-1][-3000:]}"
    finally:
        for agent in agents:  # the other node when one failed
            if agent.poll() is None:
                agent.kill()
                agent.wait()
    assert_same(parameters(tmp_path / "single"), parameters(tmp_path / "nodes"), atol=1e-5)
