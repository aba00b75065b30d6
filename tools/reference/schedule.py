"""PyTorch reference of the DCASE2024/2025 baseline's learning-rate schedule (for the fixtures only; needs torch).

Linear warm-up from 0 over ``warmup_steps``, then a half cosine to 0 at ``total_steps``, stepped per
batch: the published formula of transformers' ``get_cosine_schedule_with_warmup`` (num_cycles 0.5),
driven by ``torch.optim.lr_scheduler.LambdaLR`` on AdamW, as the reference trains::

    factor(step) = step / max(1, warmup)                                     step < warmup
                 = max(0, 0.5 * (1 + cos(pi * (step - warmup) / max(1, total - warmup))))   otherwise
"""

from __future__ import annotations

import math

import torch


def factor(step: int, warmup_steps: int, total_steps: int) -> float:
    if step < warmup_steps:
        return step / max(1, warmup_steps)
    progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
    return max(0.0, 0.5 * (1.0 + math.cos(math.pi * progress)))


def learning_rates(learning_rate: float, warmup_steps: int, total_steps: int, steps: int) -> list[float]:
    """The learning rate each of the first ``steps`` optimizer updates uses (update 0 first), read from LambdaLR."""
    parameter = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.AdamW([parameter], lr=learning_rate, weight_decay=1e-4, eps=1e-8)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: factor(step, warmup_steps, total_steps))
    rates = []
    for _ in range(steps):
        rates.append(float(optimizer.param_groups[0]["lr"]))
        optimizer.step()
        scheduler.step()
    return rates
