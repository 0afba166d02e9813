"""Model factories for the ``python`` model source in tests."""

from __future__ import annotations

import torch


class TokenModel(torch.nn.Module):
    """Token ids plus a scalar scale: an integer input and a shape-[] input."""

    def __init__(self, vocab: int = 100, dim: int = 16) -> None:
        super().__init__()
        self.embed = torch.nn.Embedding(vocab, dim)
        self.head = torch.nn.Linear(dim, 4)

    def forward(self, ids: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
        return self.head(self.embed(ids).mean(dim=1)) * scale


def token_model(vocab: int = 100) -> torch.nn.Module:
    return TokenModel(vocab)


def tiny_mlp() -> torch.nn.Module:
    return torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.ReLU(), torch.nn.Linear(16, 3))


def not_a_module() -> str:
    return "oops"


class Inverse(torch.nn.Module):
    """A batch of matrix inverses: ``aten::linalg_inv`` has no ONNX export in the TorchScript exporter."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.linalg.inv(x)


def inverse() -> torch.nn.Module:
    return Inverse()
