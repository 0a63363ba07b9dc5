"""Reference attention after the speed work equals the former implementation on the tiny config
(to float32 rounding, see the tolerance note in the test).

``GatherReferenceRead`` below is the processor as it was before (index the selected videos with
``nonzero``, project the bank in every call, ``index_copy`` the two groups back); the current
processor slices runs of a host-side mask and can take a bank projected once per generation.
"""

import copy

import pytest
import torch

from dynascene_core.models import DynaSceneModels
from dynascene_core.models.attention import ReferenceReadProcessor, _check_plain, _finish, _plain, attention
from dynascene_core.models.denoiser import _slice_rows

from test_models import randomize_adaptors

FRAMES, LATENT = 3, 8


class GatherReferenceRead:
    def __init__(self, name, state):
        self.name, self.state = name, state

    def __call__(self, attn, hidden_states, encoder_hidden_states=None, attention_mask=None):
        _check_plain(attn, attention_mask)
        bank = self.state.bank.get(self.name) if self.state.bank is not None else None
        if bank is None:
            return _plain(attn, hidden_states, None)
        frames = self.state.num_frames
        videos = hidden_states.shape[0] // frames
        mask = self.state.reference_mask
        mask = torch.ones(videos, dtype=torch.bool) if mask is None else torch.tensor(mask)
        if not bool(mask.any()):
            return _plain(attn, hidden_states, None)
        bank = bank.to(hidden_states.dtype).expand(videos, -1, -1)
        query, key, value = attn.to_q(hidden_states), attn.to_k(hidden_states), attn.to_v(hidden_states)
        sel = mask.nonzero().flatten()
        ref_key = attn.to_k(bank[sel]).repeat_interleave(frames, dim=0)
        ref_value = attn.to_v(bank[sel]).repeat_interleave(frames, dim=0)
        frame_rows = (sel[:, None] * frames + torch.arange(frames)).flatten()
        with_ref = attention(query[frame_rows], torch.cat([key[frame_rows], ref_key], 1),
                             torch.cat([value[frame_rows], ref_value], 1), attn.heads)
        if bool(mask.all()):
            out = with_ref
        else:
            own_rows = (~mask).repeat_interleave(frames).nonzero().flatten()
            own = attention(query[own_rows], key[own_rows], value[own_rows], attn.heads)
            out = query.new_empty(query.shape).index_copy(0, frame_rows, with_ref).index_copy(0, own_rows, own)
        return _finish(attn, out, hidden_states)


@pytest.fixture(scope="module")
def models():
    torch.manual_seed(0)
    return DynaSceneModels.build("tiny").eval()


def _readers(denoiser):
    return {n: m for n, m in denoiser.unet.named_modules()
            if isinstance(getattr(m, "processor", None), ReferenceReadProcessor)}


@pytest.mark.parametrize("mask", [None, (False, True), (True, True), (True, False), (False, False),
                                  (True, False, True)])
@pytest.mark.parametrize("projected", [False, True])
def test_denoiser_output_equals_the_former_processor(models, mask, projected):
    videos = len(mask) if mask else 2
    g = torch.Generator().manual_seed(1)
    sample = torch.randn(videos, 9, FRAMES, LATENT, LATENT, generator=g)
    emb = torch.randn(videos, 1, 32, generator=g)
    with torch.no_grad():
        bank = models.reference_net(torch.randn(1, 4, LATENT, LATENT, generator=g), emb[:1])
        reference = models.denoiser.project_reference(bank) if projected else bank
        now = models.denoiser(sample, 300, emb, reference=reference, reference_mask=mask)
        readers = _readers(models.denoiser)
        assert readers
        current = {n: m.processor for n, m in readers.items()}
        try:
            for m in readers.values():
                m.set_processor(GatherReferenceRead(m.processor.name, models.denoiser.control))
            before = models.denoiser(sample, 300, emb, reference=bank, reference_mask=mask)
        finally:
            for n, m in readers.items():
                m.set_processor(current[n])
    # Not bit-exact: the former code projected the bank once per selected video, this projects it once;
    # float32 GEMMs with different row counts are blocked differently (max difference seen: 5e-7).
    torch.testing.assert_close(now, before, rtol=0, atol=2e-6)


def test_projected_bank_keeps_one_entry_per_reading_block(models):
    with torch.no_grad():
        bank = models.reference_net(torch.randn(1, 4, LATENT, LATENT), torch.randn(1, 1, 32))
        projected = models.denoiser.project_reference(bank)
    assert set(projected) == set(models.denoiser.reference_block_names()) and len(projected) > 0
    name = next(iter(projected))
    attn = models.denoiser.unet.get_submodule(name).attn1
    assert torch.equal(projected[name][0], attn.to_k(bank[name])) and torch.equal(projected[name][1], attn.to_v(bank[name]))


def test_feed_forward_in_slices_gives_the_same_output(models):
    denoiser = copy.deepcopy(models.denoiser)
    randomize_adaptors(denoiser)  # motion modules act like trained ones (not the identity)
    g = torch.Generator().manual_seed(2)
    sample, emb = torch.randn(2, 9, FRAMES, LATENT, LATENT, generator=g), torch.randn(2, 1, 32, generator=g)
    with torch.no_grad():
        bank = denoiser.project_reference(models.reference_net(torch.randn(1, 4, LATENT, LATENT), emb[:1]))
        sliced = denoiser(sample, 300, emb, reference=bank, reference_mask=(False, True))  # default: 4 slices
        # really sliced: 2 videos x 3 frames -> 2 rows per slice (the largest divisor of 6 at most 6/4
        # rounded up); the motion modules' 2 x 8 x 8 positions at the first level -> 32 rows
        assert {b._chunk_size for b in denoiser._spatial_blocks} == {2}
        assert max(b._chunk_size for b, _ in denoiser._motion_blocks) == 32
        denoiser.feed_forward_chunks(1)
        whole = denoiser(sample, 300, emb, reference=bank, reference_mask=(False, True))
        assert all(b._chunk_size is None for b in denoiser._spatial_blocks)
        assert all(b._chunk_size is None for b, _ in denoiser._motion_blocks)
    assert not torch.equal(whole, models.denoiser(sample, 300, emb, reference=bank, reference_mask=(False, True)))
    torch.testing.assert_close(sliced, whole, rtol=0, atol=2e-6)


@pytest.mark.parametrize("total, pieces, rows", [(48, 4, 12), (10368, 4, 2592), (26, 4, 2), (13, 4, 1),
                                                 (3, 4, 1), (48, 1, None), (1, 4, None)])
def test_feed_forward_slice_rows_divide_the_batch(total, pieces, rows):
    assert _slice_rows(total, pieces) == rows


def test_feed_forward_pieces_must_be_positive(models):
    with pytest.raises(ValueError, match="pieces must be >= 1, got 0"):
        models.denoiser.feed_forward_chunks(0)
