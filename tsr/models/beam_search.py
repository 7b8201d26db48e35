"""Batched beam search that returns what ASTER's TopK-style beam search (aster.pytorch, TextZoom's
`AttentionRecognitionHead.beam_search`, after IBM pytorch-seq2seq's TopKDecoder) returns, without its
per-sample Python backtracking.

The original runs `max_len` steps for the whole batch, then walks back from the last step. Hypotheses that
ended (emitted EOS) are written over the sorted last-step beams, slot K-1 first, then K-2, ..., wrapping around
after K, in the order the walk finds them: later steps first, and within a step higher beam slots first.
The winner is the best-scoring hypothesis left in the K slots. Two consequences make it cheap to compute
exactly, step by step:
- once an image has K ended hypotheses, the K that stay are its K *earliest* ended ones (ordered by step, then
  beam slot): everything that ends later is found earlier by the walk and overwritten. Its result is then fixed
  and the image leaves the batch (the original keeps decoding it for all `max_len` steps).
- with R < K ended hypotheses at the last step, the slots hold those R plus the K-R best last-step beams.
Ties between equal scores are broken as torch.topk / argmax break them.

The predecessor of candidate c among the K*C candidates of an image is c // C: integer division, as it was in
the torch (< 1.3) the weights were trained with (`candidates / num_classes` on integer tensors); true
division, what that line gives in newer torch, would make it fractional.
"""
from __future__ import annotations

from typing import Callable, Sequence

import torch
import torch.nn.functional as F

# step(previous symbols [M] int64, states [M, S], memory tensors [M, ...]) -> (logits [M, C], new states [M, S])
Step = Callable[[torch.Tensor, torch.Tensor, Sequence[torch.Tensor]], tuple[torch.Tensor, torch.Tensor]]


def beam_search(step: Step, memory: Sequence[torch.Tensor], state: torch.Tensor, num_classes: int, eos: int,
                start: int, beam_width: int = 5, max_len: int = 100) -> list[list[int]]:
    """Best hypothesis per image, as symbol ids up to (without) its first EOS.

    memory: tensors [B, ...] the step reads (e.g. encoder features), repeated for each beam here;
    state: the initial decoder state [B, S]; start: the symbol fed at the first step.
    """
    batch, k, c = state.shape[0], beam_width, num_classes
    device = state.device
    results: list[list[int] | None] = [None] * batch
    if batch == 0:
        return []
    items = torch.arange(batch, device=device)                       # original index of each active image
    memory = [m.repeat_interleave(k, dim=0) for m in memory]         # [A*K, ...]: beams of an image adjacent
    state = state.repeat_interleave(k, dim=0)
    scores = torch.full((batch, k), float("-inf"), device=device)
    scores[:, 0] = 0.0                                               # one live beam per image at the start
    symbols = torch.full((batch * k,), start, dtype=torch.long, device=device)
    history = torch.zeros(batch, k, max_len, dtype=torch.long, device=device)   # symbols of each beam so far
    # the first K hypotheses of each image that ended, in (step, slot) order: scores, symbols, lengths
    ended_scores = torch.full((batch, k), float("-inf"), device=device)
    ended_symbols = torch.zeros(batch, k, max_len, dtype=torch.long, device=device)
    ended_count = torch.zeros(batch, dtype=torch.long, device=device)
    slots = torch.arange(k, device=device)
    for t in range(max_len):
        active = items.shape[0]
        logits, state = step(symbols, state, memory)
        total = scores.unsqueeze(2) + F.log_softmax(logits.float(), dim=1).view(active, k, c)
        top, candidates = total.view(active, k * c).topk(k, dim=1)  # [A, K], sorted best first
        emitted = candidates % c
        predecessor = candidates // c                                # integer division: see the module docstring
        rows = (predecessor + torch.arange(active, device=device).mul(k).unsqueeze(1)).view(-1)
        state = state.index_select(0, rows)
        history = history.gather(1, predecessor.unsqueeze(2).expand(-1, -1, max_len))
        history[:, :, t] = emitted
        ended = emitted == eos
        if bool(ended.any()):
            # place each ended hypothesis at its image's next free position (the first K are kept)
            position = ended_count.unsqueeze(1) + ended.long().cumsum(1) - 1
            keep = ended & (position < k)
            a_idx, k_idx = keep.nonzero(as_tuple=True)
            ended_scores[a_idx, position[a_idx, k_idx]] = top[a_idx, k_idx]
            ended_symbols[a_idx, position[a_idx, k_idx]] = history[a_idx, k_idx]
            ended_count = ended_count + ended.long().sum(1)
        scores = top.masked_fill(ended, float("-inf"))                 # ended beams are not expanded
        symbols = emitted.view(-1)
        last = t == max_len - 1
        finished = ended_count >= k
        if last:
            finished = torch.ones_like(finished)
        if bool(finished.any()):
            _collect(results, items, finished, ended_scores, ended_symbols, ended_count, top, history, eos, k)
            keep_items = (~finished).nonzero(as_tuple=True)[0]
            if keep_items.numel() == 0:
                break
            beams = (keep_items.unsqueeze(1) * k + slots).view(-1)
            items, scores, history = items[keep_items], scores[keep_items], history[keep_items]
            ended_scores, ended_symbols = ended_scores[keep_items], ended_symbols[keep_items]
            ended_count = ended_count[keep_items]
            state, symbols = state.index_select(0, beams), symbols.index_select(0, beams)
            memory = [m.index_select(0, beams) for m in memory]
    return results  # type: ignore[return-value]


def _collect(results, items, finished, ended_scores, ended_symbols, ended_count, top, history, eos, k):
    """Write the winners of the finished images into `results` (see the module docstring for the rule)."""
    for a in finished.nonzero(as_tuple=True)[0].tolist():
        count = min(int(ended_count[a]), k)
        candidates = [(float(ended_scores[a, j]), ended_symbols[a, j]) for j in range(count)]
        # fewer than K ended: the best K - count last-step beams (sorted by topk) fill the other slots
        candidates += [(float(top[a, j]), history[a, j]) for j in range(k - count)]
        best = max(range(len(candidates)), key=lambda j: candidates[j][0])
        sequence = candidates[best][1].tolist()
        results[int(items[a])] = sequence[:sequence.index(eos)] if eos in sequence else sequence
