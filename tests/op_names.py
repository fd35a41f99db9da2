"""A recorder of the operators PyTorch runs, for tests that check which kernels a path reaches."""

from __future__ import annotations

from torch.utils._python_dispatch import TorchDispatchMode


class OpNames(TorchDispatchMode):
    """Within the block, `names` collects each operator run, as `namespace.name` (`aten.mul`,
    `mkldnn._linear_pointwise`), in order."""

    def __init__(self) -> None:
        super().__init__()
        self.names: list[str] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.names.append(str(func.overloadpacket))
        return func(*args, **(kwargs or {}))
