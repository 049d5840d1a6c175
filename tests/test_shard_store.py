"""The shard-backed latent store: the in-memory latents bit for bit, in memory that does not grow with the data."""

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from avdit.codecs.shards import SHARD_INDEX, LatentShards, load_shards, open_shards


def write_shards(folder: Path, counts: list[int], video=(4, 5, 8, 8), audio=(4, 85), seed=0) -> Path:
    """A shard folder as `avdit encode` writes it (shards of ``counts`` clips and an index) with random latents."""
    folder.mkdir(parents=True)
    g = torch.Generator().manual_seed(seed)
    shards = []
    for i, n in enumerate(counts):
        name = f"shard_{i:05d}.safetensors"
        save_file({"video": torch.randn(n, *video, generator=g), "audio": torch.randn(n, *audio, generator=g)},
                  folder / name)
        shards.append({"file": name, "clips": n})
    (folder / SHARD_INDEX).write_text(json.dumps({"complete": True, "clips": sum(counts), "shards": shards}))
    return folder


def test_take_equals_indexing_the_latents_in_memory(tmp_path):
    folder = write_shards(tmp_path / "shards", [3, 3, 2])
    everything, index = load_shards(folder)
    store, same_index = open_shards(folder)
    assert same_index == index and len(store) == store.batch_size == everything.batch_size == 8
    assert store.video_shape == (4, 5, 8, 8) and store.audio_shape == (4, 85)
    g = torch.Generator().manual_seed(0)
    batches = [torch.randint(0, 8, (16,), generator=g) for _ in range(4)]  # repeats, across shards, any order
    batches += [torch.arange(8), torch.arange(8).flip(0), torch.tensor([5]), torch.tensor([2, 3, 2, 7, 0])]
    for idx in batches:
        got, want = store.take(idx), (everything.video[idx], everything.audio[idx])
        for a, b in zip(got, want):
            assert a.dtype == b.dtype and a.shape == b.shape and torch.equal(a, b)
    assert store.take(torch.tensor([], dtype=torch.long)).video.shape == (0, 4, 5, 8, 8)
    with pytest.raises(IndexError, match="outside the 8 clips"):
        store.take(torch.tensor([0, 8]))


def test_a_shard_that_is_missing_or_differs_from_its_index_is_refused(tmp_path):
    folder = write_shards(tmp_path / "shards", [3, 2])
    index = json.loads((folder / SHARD_INDEX).read_text())
    index["shards"][1]["clips"] = 3
    with pytest.raises(ValueError, match=r"shard_00001.safetensors holds video \(2, 4, 5, 8, 8\) float32 .*"
                                         r"index.json expects video \(3, 4, 5, 8, 8\) float32"):
        LatentShards(folder, index)
    first = folder / "shard_00000.safetensors"
    first.write_bytes(first.read_bytes()[:-100])  # cut short: its header is whole, its last clip is not
    with pytest.raises(ValueError, match="shard_00000.safetensors is shorter than its header says"):
        open_shards(folder)[0].take(torch.tensor([2]))
    (folder / "shard_00001.safetensors").unlink()
    with pytest.raises(FileNotFoundError, match="shard_00001.safetensors is missing"):
        open_shards(folder)


# In its own process, so that its peak resident memory (VmHWM) is its own: every clip of 1x shards read in random
# batches, then every clip of 10x; then 10x loaded into memory, which shows the measure sees the data.
MEASURE = textwrap.dedent("""
    import json, sys, torch
    from avdit.codecs.shards import load_shards, open_shards

    def peak_mib():
        status = dict(line.split(":", 1) for line in open("/proc/self/status"))
        return int(status["VmHWM"].split()[0]) / 1024

    peaks = []
    for folder in sys.argv[1:]:
        store, _ = open_shards(folder)
        for idx in torch.randperm(len(store), generator=torch.Generator().manual_seed(0)).split(64):
            store.take(idx)
        peaks.append(peak_mib())
    everything, _ = load_shards(sys.argv[-1])
    peaks.append(peak_mib())
    print(json.dumps(peaks))
""")


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads resident memory from /proc")
def test_resident_memory_stays_flat_as_the_shards_grow_tenfold(tmp_path):
    video, audio, clips = (4, 8, 16, 16), (4, 340), 128  # 4 MiB a shard
    one = write_shards(tmp_path / "one", [clips] * 2, video, audio)
    ten = write_shards(tmp_path / "ten", [clips] * 20, video, audio, seed=1)
    data_mib = 20 * clips * (torch.Size(video).numel() + torch.Size(audio).numel()) * 4 / 2**20  # 10x: 80 MiB
    result = subprocess.run([sys.executable, "-c", MEASURE, str(one), str(ten)], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    after_one, after_ten, in_memory = json.loads(result.stdout.strip().splitlines()[-1])
    assert after_ten - after_one < 0.1 * data_mib, (after_one, after_ten)  # flat: 10x the data, no more memory
    assert in_memory - after_ten > 0.75 * data_mib, (after_ten, in_memory)  # the in-memory loader holds it all
