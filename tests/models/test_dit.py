"""Tiny-config tests of the spatio-temporal DiT backbone (through `Denoiser`)."""

from __future__ import annotations

import pytest
import torch
from diffusers import LatteTransformer3DModel

from neuralgym.model_folder import ModelFolder
from neuralgym.models.denoiser import BaseModel, Denoiser
from neuralgym.sampler import sample

pytestmark = pytest.mark.usefixtures("flush_denormals")


@pytest.fixture(scope="session")
def dit_config(tiny_denoiser):
    """`dit_config(**overrides)` -> the tiny config with the DiT backbone."""
    return lambda **kw: tiny_denoiser.config(backbone="dit", **kw)


def test_dit_shapes(denoiser_case, dit_config, tiny_denoiser):
    T, encoding, action_context, M = denoiser_case
    tiny_denoiser.check_shapes(dit_config(frames_per_call=T, action_encoding=encoding,
                                          action_context=action_context, metadata_dim=M))


def test_dit_lora_stage_shapes(dit_config, tiny_denoiser):
    tiny_denoiser.check_shapes(dit_config(stage="lora", frames_per_call=2))


def test_dit_loss_only_on_targets(dit_config, tiny_denoiser):
    """The output for the T targets; context frames are inputs only (the document's mask)."""
    torch.manual_seed(0)
    model = Denoiser(dit_config(frames_per_call=2))
    b = tiny_denoiser.batch(model.config)
    cond = model.condition(b["context"], b["actions"], b["metadata"], torch.zeros(2))
    v = model.velocity(b["target"], torch.tensor([3, 700]), cond)
    assert v.shape == (2, 2, *tiny_denoiser.chw)
    # the padded grid's positions are precomputed (not recomputed by Latte on every call)
    pe = model.backbone.net.pos_embed
    assert (pe.height, pe.width) == (5, 7) and pe.pos_embed.shape[1] == 35


def test_dit_overfits_a_fixed_batch(dit_config, tiny_denoiser):
    """300 steps: the v-loss falls at least 5x (about 16x on the development machine)."""
    first, last = tiny_denoiser.overfit(dit_config(), 300)
    assert last * 5 <= first, (first, last)


def test_dit_folder_round_trip_is_exact(tmp_path, dit_config, tiny_denoiser):
    torch.manual_seed(0)
    model = Denoiser(dit_config(frames_per_call=2)).eval()
    folder = ModelFolder(tmp_path)
    folder.save_component("denoiser", model, model.config)
    loaded = Denoiser.from_folder(folder)
    b = tiny_denoiser.batch(model.config)
    outs = [sample(m, b["context"], b["actions"], b["metadata"], 2,
                   torch.Generator().manual_seed(5)) for m in (model, loaded)]
    assert torch.equal(outs[0], outs[1])


def test_dit_lora_on_a_latte_base(tmp_path, dit_config, tiny_denoiser):
    torch.manual_seed(1)
    LatteTransformer3DModel(
        num_attention_heads=2, attention_head_dim=8, in_channels=8, out_channels=8,
        num_layers=1, cross_attention_dim=16, sample_size=8, patch_size=2,
        activation_fn="gelu-approximate", num_embeds_ada_norm=1000, norm_type="ada_norm_single",
        norm_elementwise_affine=False, norm_eps=1e-6, caption_channels=40, video_length=16,
    ).save_pretrained(tmp_path / "latte")
    base = BaseModel.find(tmp_path / "latte")
    config = base.apply_to(dit_config())
    torch.manual_seed(0)
    model = Denoiser(config)
    fresh = model.load_base(base)
    assert {n.split(".")[0] for n in fresh} == {"pos_embed", "proj_out", "caption_projection"}
    model.add_lora(2)
    trained = [n for n, p in model.named_parameters() if p.requires_grad]
    backbone = [n for n in trained if n.startswith("backbone.")]
    assert all("lora_" in n or any(a in n for a in ("pos_embed.proj", "proj_out",
                                                      "caption_projection", "level_embedding"))
               for n in backbone), backbone
    frozen = {n: p.detach().clone() for n, p in model.named_parameters() if not p.requires_grad}
    opt = torch.optim.AdamW(model.trainable_parameters(), lr=1e-2, weight_decay=0.1)
    for step in range(2):
        loss, _ = model(tiny_denoiser.batch(config), generator=torch.Generator().manual_seed(step))
        opt.zero_grad()
        loss.backward()
        opt.step()
    params = dict(model.named_parameters())
    assert all(torch.equal(v, params[n]) for n, v in frozen.items())
    plain = Denoiser(config)
    plain.load_state_dict(model.merged().state_dict())  # plain keys, no peft
    b = tiny_denoiser.batch(config)
    outs = [sample(m.eval(), b["context"], b["actions"], b["metadata"], 2,
                   torch.Generator().manual_seed(5)) for m in (model, plain)]
    torch.testing.assert_close(outs[0], outs[1], atol=1e-4, rtol=1e-4)
