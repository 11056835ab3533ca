"""A fast frame decoder: a smaller stand-in for the VAE's decoder, trained on the VAE's latents.

The VAE's decoder is most of a dream step's cost where frames are needed (17 of 24 GFLOP
per Breakout frame at one denoising step): its upsampling convolutions run at full
resolution. `FrameDecoder` is the decoder half of a diffusers AutoencoderKL (`Decoder`:
mid block, one `UpDecoderBlock2D` per level) with its own, smaller `block_out_channels`,
reading the same latents: the VAE's encoder and latent normalisation stay as they are, so the
denoiser and g_phi trained on those latents are unchanged, and the world model decodes with
whichever decoder its folder offers (`WorldModel.from_pretrained(..., decoder=...)`).

`training/train_decoder.py` trains it on frames encoded by the frozen VAE (posterior samples,
normalised), with the VAE's bright-weighted reconstruction loss against the real frames, and
measures its reconstruction floor like the VAE's. Its config is a `VAEConfig` (frame size,
latent channels, padding, normalisation copied from the VAE; levels, layers and widths its
own; the encoder-only fields unused). Stored as the "decoder" component of a world-model
folder.
"""

from __future__ import annotations

from dataclasses import replace

from diffusers.models.autoencoders.vae import Decoder
from torch import Tensor

from neuralgym.models.vae import LatentDecoder, VAEConfig, reconstruction_loss

COMPONENT = "decoder"


def decoder_config(vae: VAEConfig, block_out_channels: tuple[int, ...],
                   layers_per_block: int, norm_num_groups: int) -> VAEConfig:
    """The config of a decoder for `vae`'s latents: its frame size, latent channels, padding,
    loss weight and normalisation; the given widths. Same number of levels (upsampling)."""
    if len(block_out_channels) != len(vae.block_out_channels):
        raise ValueError(f"the decoder needs {len(vae.block_out_channels)} levels like the VAE "
                         f"(its latents are {vae.downsample}x down), got {block_out_channels}")
    return replace(vae, block_out_channels=tuple(block_out_channels),
                   layers_per_block=layers_per_block, norm_num_groups=norm_num_groups,
                   mid_block_add_attention=False)


class FrameDecoder(LatentDecoder):
    """Normalised latents (B, C, h, w) -> uint8 frames (B, H, W, 3), like `FrameVAE.decode`."""

    component = COMPONENT

    def __init__(self, config: VAEConfig):
        super().__init__(config)
        n = len(config.block_out_channels)
        self.decoder = Decoder(
            in_channels=config.latent_channels,
            out_channels=3,
            up_block_types=("UpDecoderBlock2D",) * n,
            block_out_channels=config.block_out_channels,
            layers_per_block=config.layers_per_block,  # resnets per level: this + 1
            norm_num_groups=config.norm_num_groups,
            mid_block_add_attention=config.mid_block_add_attention,
        )
        self._set_normalization(config.latent_shift, config.latent_scale)

    def _decode_raw(self, z: Tensor) -> Tensor:
        """Unnormalised latents (B, C, h, w) -> float (B, 3, H, W) in about [-1, 1], cropped."""
        x = self.decoder(z)  # (B, 3, H_pad, W_pad)
        return x[:, :, : self.config.frame_height, : self.config.frame_width].float()

    def forward(self, batch: dict[str, Tensor]) -> tuple[Tensor, dict[str, float]]:
        """batch["latents"]: (B, C, h, w) normalised latents of batch["frames"]: (B, H, W, 3)
        uint8. The loss is the VAE's bright-weighted reconstruction loss."""
        frames = batch["frames"].to(self.device)  # (B, H, W, 3) uint8
        z = batch["latents"].to(self.device).float()  # (B, C, h, w)
        z = z / self.latent_scale + self.latent_shift  # unnormalised
        recon = self._decode_raw(z.to(self.dtype))  # (B, 3, H, W)
        loss = reconstruction_loss(recon, frames, self.config.bright_weight)
        target = frames.permute(0, 3, 1, 2).float() / 127.5 - 1.0  # (B, 3, H, W)
        mse = ((recon.detach().clamp(-1, 1) - target) ** 2).mean() * 127.5**2
        return loss, {"loss": loss.item(), "mse": mse.item()}
