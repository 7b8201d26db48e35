"""tsr.models.beam_search: a case worked out by hand, and agreement with a plain re-statement of the original
TopK-style search (all max_len steps for every image, then the walk back with slot replacement)."""
import math

import pytest
import torch
import torch.nn.functional as F

from tsr.models.beam_search import beam_search

A, B, EOS, START = 0, 1, 2, 3
# p(next | previous): the hand case's decoder ignores its state and reads only the previous symbol
TABLE = {START: (0.5, 0.3, 0.2), A: (0.1, 0.5, 0.4), B: (0.6, 0.3, 0.1), EOS: (0.4, 0.4, 0.2)}  # EOS: never expanded


def table_step(previous, state, memory):
    logits = torch.tensor([[math.log(p) for p in TABLE[int(s)]] for s in previous])
    return logits, state


def test_hand_worked_case():
    # step 0 (one live beam): a .5, b .3, EOS .2 -> keep a, b
    # step 1: ab .25, a<EOS> .20, ba .18, ... -> keep ab, a<EOS> (1st ended: "a", .20)
    # step 2 (only ab is live): abb .125, ab<EOS> .10 -> 2nd ended: "ab", .10; K = 2 ended -> final
    # winner: the better of the two earliest ended hypotheses: "a" (.20 > .10)
    out = beam_search(table_step, [], torch.zeros(1, 1), num_classes=3, eos=EOS, start=START, beam_width=2, max_len=3)
    assert out == [[A]]


def test_fewer_ended_than_beams_keeps_best_last_step_beams():
    # K = 3, max_len = 2: step 0 keeps a .5, b .3, EOS .2 (ended: "", .2); step 1 from a and b:
    # ab .25, a<EOS> .20, ba .18 -> ended: "a" (.20). Two ended < K = 3: slots hold them plus the best last-step
    # beam "ab" (.25), which wins although it never ended.
    out = beam_search(table_step, [], torch.zeros(1, 1), num_classes=3, eos=EOS, start=START, beam_width=3, max_len=2)
    assert out == [[A, B]]


def reference_beam_search(step, state, num_classes, eos, start, k, max_len):
    """The original algorithm for one image, on Python numbers: every step, then the backtracking walk."""
    c = num_classes
    scores = [0.0] + [-math.inf] * (k - 1)
    symbols = [start] * k
    states = state.repeat(k, 1)
    stored_scores, stored_pred, stored_sym = [], [], []
    for _ in range(max_len):
        logits, states = step(torch.tensor(symbols), states, [])
        logp = F.log_softmax(logits.float(), dim=1)
        total = (torch.tensor(scores).unsqueeze(1) + logp).view(-1)
        top, cand = total.topk(k)
        pred = (cand // c).tolist()
        symbols = (cand % c).tolist()
        states = states.index_select(0, cand // c)
        stored_scores.append(top.tolist())
        stored_pred.append(pred)
        stored_sym.append(list(symbols))
        scores = [-math.inf if s == eos else v for s, v in zip(symbols, top.tolist())]
    order = sorted(range(k), key=lambda j: -stored_scores[-1][j])
    slot_score = [stored_scores[-1][j] for j in order]
    # each slot: (time, beam) where its hypothesis ends in the stored arrays
    slot_end = [(max_len - 1, j) for j in order]
    found = 0
    for t in range(max_len - 1, -1, -1):
        for j in reversed([j for j in range(k) if stored_sym[t][j] == eos]):
            slot = k - (found % k) - 1
            found += 1
            slot_end[slot], slot_score[slot] = (t, j), stored_scores[t][j]
    best = max(range(k), key=lambda s: slot_score[s])
    t, j = slot_end[best]
    sequence = []
    while t >= 0:
        sequence.append(stored_sym[t][j])
        j = stored_pred[t][j]
        t -= 1
    sequence.reverse()
    return sequence[:sequence.index(eos)] if eos in sequence else sequence


class RandomDecoder(torch.nn.Module):
    """A small GRU decoder with random weights: the symbols it emits depend on its state and the previous one."""

    def __init__(self, classes, seed, eos_bias):
        super().__init__()
        torch.manual_seed(seed)
        self.embedding = torch.nn.Embedding(classes + 1, 8)
        self.cell = torch.nn.GRUCell(8, 8)
        self.out = torch.nn.Linear(8, classes)
        with torch.no_grad():
            self.out.weight.mul_(6)
            self.out.bias[EOS] += eos_bias

    def forward(self, previous, state, memory):
        state = self.cell(self.embedding(previous), state)
        return self.out(state), state


@pytest.mark.parametrize("seed", range(12))
def test_matches_the_original_walk_back(seed):
    classes, k, max_len, batch = 5, 3, 8, 4
    decoder = RandomDecoder(classes, seed, eos_bias=(seed % 4) - 1.5).eval()
    state = torch.randn(batch, 8, generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        batched = beam_search(decoder, [], state, classes, eos=EOS, start=classes, beam_width=k, max_len=max_len)
        single = [reference_beam_search(decoder, state[i:i + 1], classes, EOS, classes, k, max_len)
                  for i in range(batch)]
    assert batched == single


def test_memory_follows_the_images_when_some_finish_early():
    # image i's memory holds the symbol it must emit: a finished image leaving the batch must not shift the others
    def step(previous, state, memory):
        (wanted,) = memory
        logits = torch.full((previous.shape[0], 4), -9.0)
        ended = previous == wanted.squeeze(1)
        logits[torch.arange(previous.shape[0]), wanted.squeeze(1)] = 0.0
        logits[ended, EOS] = 5.0
        return logits, state

    wanted = torch.tensor([[A], [B], [A]])
    out = beam_search(step, [wanted], torch.zeros(3, 1), num_classes=4, eos=EOS, start=3, beam_width=2, max_len=6)
    assert out == [[A], [B], [A]]
