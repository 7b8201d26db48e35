"""tsr.dist: torchrun's environment, the single-process fallbacks, and the collectives on two gloo ranks."""
import pytest
import torch
import torch.distributed
import torch.multiprocessing as mp

from tsr import dist
from tsr.errors import TsrError


def test_rank_and_world_come_from_torchruns_environment(monkeypatch):
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
        monkeypatch.delenv(name, raising=False)
    assert (dist.rank(), dist.world_size(), dist.local_rank(), dist.is_main()) == (0, 1, 0, True)
    monkeypatch.setenv("RANK", "3")
    monkeypatch.setenv("WORLD_SIZE", "4")
    monkeypatch.setenv("LOCAL_RANK", "1")
    assert (dist.rank(), dist.world_size(), dist.local_rank(), dist.is_main()) == (3, 4, 1, False)


def test_single_process_collectives_change_nothing(monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    tensor = torch.tensor([1.5, -2.0])
    assert dist.all_reduce_sum(tensor) is tensor and tensor.tolist() == [1.5, -2.0]
    assert dist.all_gather_object({"step": 7}) == [{"step": 7}]
    bn = torch.nn.BatchNorm1d(2)
    bn.running_mean.fill_(0.25)
    dist.broadcast_buffers(bn)
    dist.barrier()
    assert bn.running_mean.tolist() == [0.25, 0.25]


def test_init_names_the_setting_in_its_errors(monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    with pytest.raises(TsrError, match=r"^train.device must be auto, cuda or cpu, got 'gpu'$"):
        dist.init("gpu", setting="train.device")
    assert dist.init("cpu") == torch.device("cpu") and not dist.is_initialized()
    if not torch.cuda.is_available():
        with pytest.raises(TsrError, match=r"^--device is cuda, but this torch .* sees no CUDA device"):
            dist.init("cuda")
        assert dist.init("auto") == torch.device("cpu")


def test_ranks_take_whole_contiguous_batches(monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "3")
    plans = []
    for rank in range(3):
        monkeypatch.setenv("RANK", str(rank))
        plans.append([list(b) for b in dist.shard_batches(11, 2)])
    assert plans == [[[0, 1], [6, 7]], [[2, 3], [8, 9]], [[4, 5], [10]]]
    assert sorted(i for plan in plans for b in plan for i in b) == list(range(11))
    with pytest.raises(ValueError, match="batch_size must be >= 1, got 0"):
        dist.shard_batches(3, 0)


def _rank_worker(rank, world, init_file, queue):
    torch.distributed.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    try:
        summed = dist.all_reduce_sum(torch.tensor([rank + 1.0, 10.0 * rank]))
        gathered = dist.all_gather_object(f"rank{rank}")
        bn = torch.nn.BatchNorm1d(2)
        bn.running_mean.fill_(rank + 0.5)                 # each rank's own statistics
        dist.broadcast_buffers(bn)
        dist.barrier()
        queue.put((rank, dist.rank(), dist.world_size(), dist.is_main(), summed.tolist(), gathered,
                   bn.running_mean.tolist(), [list(b) for b in dist.shard_batches(5, 2)]))
    finally:
        torch.distributed.destroy_process_group()


def test_collectives_on_two_gloo_ranks(tmp_path):
    queue = mp.get_context("spawn").Queue()
    mp.start_processes(_rank_worker, args=(2, str(tmp_path / "init"), queue), nprocs=2, start_method="spawn")
    by_rank = {r[0]: r[1:] for r in (queue.get(timeout=60) for _ in range(2))}
    for rank, (seen_rank, world, main, summed, gathered, running_mean, batches) in by_rank.items():
        assert (seen_rank, world, main) == (rank, 2, rank == 0)
        assert summed == [3.0, 10.0]                      # (1 + 2, 0 + 10) on both ranks
        assert gathered == ["rank0", "rank1"]             # in rank order
        assert running_mean == [0.5, 0.5]                 # rank 0's buffers everywhere
    assert by_rank[0][-1] == [[0, 1], [4]] and by_rank[1][-1] == [[2, 3]]
