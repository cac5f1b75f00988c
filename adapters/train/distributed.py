"""Data parallelism under torchrun (WORLD_SIZE > 1 is how torchrun says so): this process's rank,
its device, and the few collective operations the recipe needs. A single process is world size 1,
rank 0, and every operation is then a no-op."""

from __future__ import annotations

import atexit
import os
from collections.abc import Sequence
from dataclasses import dataclass

import torch


@dataclass
class Distributed:
    """This process's place in a torchrun job; a single process is world_size 1, rank 0."""

    rank: int
    world_size: int
    device: torch.device

    @classmethod
    def setup(cls) -> Distributed:
        # torchrun announces data parallelism through these variables (its documented contract).
        world_size = int(os.environ.get("WORLD_SIZE", "1"))
        if world_size <= 1:
            device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
            if device.type == "cpu" and "OMP_NUM_THREADS" not in os.environ:
                # One thread per usable core (torch's default can undercount on VMs), unless
                # the operator chose a number.
                torch.set_num_threads(len(os.sched_getaffinity(0)))
            return cls(rank=0, world_size=1, device=device)
        import torch.distributed as tdist

        local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        if torch.cuda.is_available():
            torch.cuda.set_device(local_rank)
            device = torch.device("cuda", local_rank)
        else:
            device = torch.device("cpu")
        if not tdist.is_initialized():
            tdist.init_process_group("nccl" if device.type == "cuda" else "gloo")
            # The group outlives this call: a second train() in the same process (a resume)
            # reuses it, since re-initialising after destroying it can hang on the rendezvous.
            atexit.register(tdist.destroy_process_group)
        return cls(rank=tdist.get_rank(), world_size=world_size, device=device)

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def sum(self, values: Sequence[float]) -> list[float]:
        """Element-wise sum over all ranks (identity for one process)."""
        if self.world_size == 1:
            return list(values)
        import torch.distributed as tdist

        tensor = torch.tensor(list(values), dtype=torch.float64, device=self.device)
        tdist.all_reduce(tensor)
        return tensor.tolist()

    def any(self, flag: bool) -> bool:
        """True on every rank when any rank's flag is true, so all ranks stop together."""
        return self.sum([float(flag)])[0] > 0

    def barrier(self) -> None:
        if self.world_size > 1:
            import torch.distributed as tdist

            tdist.barrier()
