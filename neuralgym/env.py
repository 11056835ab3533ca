"""The dream as a Gymnasium env: `gym.make("NeuralBreakout-v0", model=DIR)`.

`NeuralRetroEnv` has the observation space, action space and `info` keys of
`neuralgym.make_real(id)` for the same id, and the same reward and episode-end rules (the
game spec's, applied to metadata), but every `step` runs the world model:

1. g_phi predicts the metadata m_t,
2. the denoiser and the few-step sampler generate the latent(s),
3. the VAE decodes the native-resolution uint8 frame,
4. reward and termination are the spec's rules on (m_{t-1}, m_t).

`DreamBatch` below is the bookkeeping both this env and `NeuralRetroVectorEnv` use: B dreams,
each with the `DreamState` of the frames it has *served*, and (in multi-frame mode) the plan
of the last model call. torch and the models are imported when an env is built, not when
`neuralgym` is imported.
"""

from __future__ import annotations

import os
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import gymnasium as gym
import numpy as np

from neuralgym.games import GameSpec, get_spec

if TYPE_CHECKING:
    import torch

    from neuralgym.start_contexts import StartContexts
    from neuralgym.world_model import DreamState, WorldModel


class ModelMismatchError(ValueError):
    """A world-model folder that belongs to another game, or asked for what it cannot do."""


# -- loading --------------------------------------------------------------------------------


def _training_help(spec: GameSpec, out: str = "DIR") -> str:
    steps = (
        f"record episodes (`python agents/record.py --env {spec.env_id} --out DATA`), "
        f"train a world model with the stages in README 'Training a world model' "
        f"(training/train_vae.py, prepare_latents.py, train_metadata.py, train_denoiser.py, "
        f"all with --out {out}), add start contexts (`python training/make_start_contexts.py "
        f"--data DATA --model {out}`) and pass the folder: gym.make({spec.env_id!r}, model={out!r})"
    )
    if spec.backend == "retro" and spec.rom_help:
        return f"First import the ROM: {spec.rom_help} Then {steps}"
    return steps[0].upper() + steps[1:]


def resolve_model_folder(env_id: str, model: str | os.PathLike | None) -> Path:
    """The world-model folder for `model` (None: the shipped one), or a NoModelError that
    says how to train one or where to put it."""
    from neuralgym.model_folder import ModelFolder
    from neuralgym.predictors import NoModelError, shipped_model

    spec = get_spec(env_id)
    if model is None:
        path = shipped_model(env_id)
        folder = ModelFolder(path)
        if not (folder.has("vae") and folder.has("denoiser")):
            raise NoModelError(
                f"{env_id}: no world model ships with neuralgym for this game yet (nothing "
                f"complete in {path}). {_training_help(spec)}; or put a trained world-model "
                f"folder (config.json + safetensors) at {path} to make it the default."
            )
        return path
    path = Path(model)
    if not path.exists():
        raise NoModelError(f"{env_id}: world-model folder {path} does not exist. "
                           + _training_help(spec, str(path)))
    return path


def load_dream_model(env_id: str, model: str | os.PathLike | None = None, device: str = "cpu",
                     denoising_steps: int | None = None, frames_per_call: int | None = None,
                     cuda_graphs: bool = False, decoder: str = "auto",
                     bf16_weights: bool = False, sample_metadata: bool = False
                     ) -> tuple[WorldModel, Path, StartContexts | None]:
    """Load and check the world model behind a Neural id.

    Returns the model, its folder and its start contexts (None when the folder has none).
    Errors: NoModelError (no folder), ModelFolderError (incomplete or corrupt folder),
    ModelMismatchError (a model of another game, or a `frames_per_call` it was not trained
    for, or a fast `decoder` it lacks), ValueError (bad `device`, `denoising_steps` or
    `decoder`, or `cuda_graphs` off CUDA), StartContextsError (a corrupt start-contexts file
    or one that does not fit the model).
    """
    import torch

    from neuralgym.model_folder import ModelFolder
    from neuralgym.start_contexts import has_start_contexts, load_start_contexts
    from neuralgym.world_model import WorldModel

    spec = get_spec(env_id)
    path = resolve_model_folder(env_id, model)
    trained_on = ModelFolder(path).read_config().get("env_id")
    if trained_on != env_id:
        what = trained_on or "an unnamed game (its config.json has no env_id)"
        raise ModelMismatchError(
            f"{path} is a world model of {what}, not {env_id}; pass a folder trained on "
            f"{env_id}" + (f" or use gym.make({trained_on!r}, ...)" if trained_on else "")
        )
    try:
        dev = torch.device(device)
    except RuntimeError as e:
        raise ValueError(f"device must be 'cpu' or 'cuda' (or 'cuda:N'), got {device!r} ({e})"
                         ) from None
    if dev.type not in ("cpu", "cuda"):
        raise ValueError(f"device must be 'cpu' or 'cuda', got {device!r}")
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} asked for, but torch sees no CUDA device; "
                         "use device='cpu'")
    if cuda_graphs and dev.type != "cuda":
        raise ValueError(f"cuda_graphs=True needs device='cuda', got {device!r}")
    if denoising_steps is not None and (isinstance(denoising_steps, bool)
                                        or not isinstance(denoising_steps, (int, np.integer))
                                        or denoising_steps < 1):
        raise ValueError(f"denoising_steps must be a positive int (or None for the folder's "
                         f"default), got {denoising_steps!r}")
    wm = WorldModel.from_pretrained(path, device=dev, decoder=decoder,
                                    steps=int(denoising_steps) if denoising_steps else None)
    wm.sample_metadata = bool(sample_metadata)
    if bf16_weights:  # before the graphs are captured
        wm.hold_in_bf16()
    if cuda_graphs:
        wm.enable_cuda_graphs()
    limit = wm.denoiser.config.num_train_timesteps
    if not 1 <= wm.steps <= limit:
        raise ValueError(f"denoising_steps must be in 1..{limit}, got {wm.steps}")
    if frames_per_call is not None and frames_per_call != wm.frames_per_call:
        raise ModelMismatchError(
            f"{path} was trained to generate {wm.frames_per_call} frame(s) per call; "
            f"frames_per_call={frames_per_call!r} is not available (leave it None, or train a "
            f"denoiser with that many frames per call)")
    # The env serves the T frames of a call one at a time and may keep only the first k of
    # them; it needs their latents, which the state after a call holds only if the history
    # is at least T long. A longer history changes no prediction (g_phi reads at most its
    # window, the denoiser its context), it only keeps more latents.
    wm.history = max(wm.history, wm.frames_per_call)
    contexts = load_start_contexts(path) if has_start_contexts(path) else None
    if contexts is not None:
        check_start_contexts(contexts, spec, wm, path)
    return wm, path, contexts


def check_start_contexts(contexts: StartContexts, spec: GameSpec, model: WorldModel,
                         path: Path) -> None:
    from neuralgym.start_contexts import StartContextsError, start_contexts_path

    where = start_contexts_path(path)
    fix = (f"rewrite it with `python training/make_start_contexts.py --data DATASET "
           f"--model {path}`")
    problems = []
    if contexts.env_id and contexts.env_id != spec.env_id:
        problems.append(f"it was made from {contexts.env_id} data")
    if tuple(contexts.frames.shape[2:]) != spec.obs_shape:
        problems.append(f"frames are {tuple(contexts.frames.shape[2:])}, the game's are "
                        f"{spec.obs_shape}")
    if contexts.metadata.shape[2] != len(spec.metadata):
        problems.append(f"{contexts.metadata.shape[2]} metadata values, the game has "
                        f"{len(spec.metadata)}")
    if contexts.length < model.context:
        problems.append(f"contexts of {contexts.length} frames, the model starts from "
                        f"{model.context}")
    if contexts.actions.size and not (0 <= contexts.actions.min()
                                      and contexts.actions.max() < spec.n_actions):
        problems.append(f"actions outside 0..{spec.n_actions - 1}")
    if problems:
        raise StartContextsError(f"{where} does not fit {spec.env_id}: "
                                 + "; ".join(problems) + f"; {fix}")


# -- reset options --------------------------------------------------------------------------


def expected_options(spec: GameSpec, context: int) -> str:
    H, W, _ = spec.obs_shape
    M = len(spec.metadata)
    return (f'{{"frames": (L, {H}, {W}, 3) uint8, "metadata": (L, {M}) float, '
            f'"actions": (L-1,) int in 0..{spec.n_actions - 1}}} with L >= {context}, or '
            f'{{"episode": an episode folder or neuralgym.data.Episode, "step": t}} with '
            f"t >= {context - 1}")


def context_from_options(options: Mapping[str, Any], spec: GameSpec, context: int,
                         history: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The real context a dream starts from, from `reset(options=...)`:
    frames (L, H, W, 3) uint8, metadata (L, M) float32, actions (L-1,) int64.

    Raises a ValueError that says what is expected."""
    from neuralgym.data import Episode, frames_of, load_episode

    expected = expected_options(spec, context)
    bad = f"{spec.env_id}: bad reset options: "
    if not isinstance(options, Mapping):
        raise ValueError(f"{bad}options must be a dict, got {type(options).__name__}; "
                         f"expected {expected}")
    keys = set(options)
    H, W, _ = spec.obs_shape
    M = len(spec.metadata)
    if keys == {"episode", "step"}:
        ep = options["episode"]
        if isinstance(ep, (str, os.PathLike)):
            ep = load_episode(ep)
        if not isinstance(ep, Episode):
            raise ValueError(f"{bad}'episode' must be an episode folder or an Episode, got "
                             f"{type(ep).__name__}; expected {expected}")
        if ep.info.get("env_id", spec.env_id) != spec.env_id:
            raise ValueError(f"{bad}the episode is from {ep.info['env_id']}, not {spec.env_id}")
        t = options["step"]
        if isinstance(t, bool) or not isinstance(t, (int, np.integer)):
            raise ValueError(f"{bad}'step' must be an int, got {t!r}; expected {expected}")
        t = int(t)
        if not context - 1 <= t <= len(ep):
            raise ValueError(f"{bad}step {t} is outside {context - 1}..{len(ep)}: the dream "
                             f"needs the {context} frames up to the step (the episode has "
                             f"{len(ep)} steps)")
        L = min(t + 1, history)
        name = options["episode"] if isinstance(options["episode"], (str, os.PathLike)) \
            else "passed in options['episode']"
        try:
            frames = np.array(frames_of(ep, str(name))[t - L + 1 : t + 1])
        except ValueError as e:
            raise ValueError(f"{bad}{e}") from None
        metadata = np.array(ep.metadata[t - L + 1 : t + 1])
        actions = np.array(ep.actions[t - L + 1 : t])
    elif keys == {"frames", "metadata", "actions"}:
        frames = np.asarray(options["frames"])
        metadata = np.asarray(options["metadata"])
        actions = np.asarray(options["actions"])
        L = frames.shape[0] if frames.ndim else 0
    else:
        arrays, recorded = {"frames", "metadata", "actions"}, {"episode", "step"}
        unknown = sorted(keys - arrays - recorded)
        if unknown:
            what = f"unknown keys {unknown}"
        elif keys <= arrays or keys <= recorded:
            what = f"missing keys {sorted((arrays if keys <= arrays else recorded) - keys)}"
        else:
            what = f"keys {sorted(keys)} mix the two forms"
        raise ValueError(f"{bad}{what}; expected {expected}")
    if frames.dtype != np.uint8 or frames.shape[1:] != (H, W, 3):
        raise ValueError(f"{bad}frames must be (L, {H}, {W}, 3) uint8, got {frames.shape} "
                         f"{frames.dtype}")
    if L < context:
        raise ValueError(f"{bad}the model starts from at least {context} frames, got {L}")
    if metadata.dtype.kind not in "fiu" or metadata.shape != (L, M):
        raise ValueError(f"{bad}metadata must be ({L}, {M}) float (the game's "
                         f"{', '.join(spec.metadata_names)}), got {metadata.shape} "
                         f"{metadata.dtype}")
    if not np.isfinite(metadata).all():
        raise ValueError(f"{bad}metadata must be finite")
    if actions.dtype.kind not in "iu" or actions.shape != (L - 1,):
        raise ValueError(f"{bad}actions must be ({L - 1},) int (the actions between the "
                         f"{L} frames), got {actions.shape} {actions.dtype}")
    if actions.size and not (actions.min() >= 0 and actions.max() < spec.n_actions):
        raise ValueError(f"{bad}actions must lie in 0..{spec.n_actions - 1}, got "
                         f"{actions.min()}..{actions.max()}")
    return (np.ascontiguousarray(frames), metadata.astype(np.float32),
            actions.astype(np.int64))


# -- the dreams -----------------------------------------------------------------------------


@dataclass
class _Plan:
    """The T frames of one model call, generated for `action` repeated T times."""

    action: int
    latents: torch.Tensor  # (1, T, C, h, w)
    metadata_t: torch.Tensor  # (1, T, M)
    frames: np.ndarray  # (T, H, W, 3) uint8
    metadata: np.ndarray  # (T, M) float32
    served: int = 0


@dataclass
class _Dream:
    state: DreamState  # (1, ...) the served past: only frames the agent has seen
    frame: np.ndarray  # (H, W, 3) the last served frame
    metadata: np.ndarray  # (M,) its metadata
    plan: _Plan | None = None


def _cat_states(states: Sequence[DreamState]) -> DreamState:
    import torch

    from neuralgym.world_model import DreamState

    if len(states) == 1:
        return states[0]
    return DreamState(torch.cat([s.latents for s in states]),
                      torch.cat([s.metadata for s in states]),
                      torch.cat([s.actions for s in states]))


def _context(state: DreamState, K: int) -> DreamState:
    """What the denoiser reads of a dream's state: its last K latents and K-1 actions and its
    last metadata; equal shapes for every dream, whatever the length of its history."""
    from neuralgym.world_model import DreamState

    return DreamState(state.latents[:, -K:], state.metadata[:, -1:],
                      state.actions[:, max(0, state.actions.shape[1] - (K - 1)):])


class DreamBatch:
    """`num` dreams of one world model, each served one frame a step.

    With T = frames_per_call > 1 a model call for dream i assumes its current action repeats
    and generates T frames; they are served over the next steps while the action stays the
    same. A different action (or the end of the plan) throws the rest away and generates again
    from the state after the frames actually served, so only served frames enter a dream's
    history. Dreams that need a call in the same step share one batched denoiser and decoder
    call; only g_phi runs once per history length (which differs in the first steps after a
    start).
    """

    def __init__(self, model: WorldModel, game: GameSpec, num: int):
        self.model = model
        self.game = game
        self.dreams: list[_Dream | None] = [None] * num

    def started(self, i: int) -> bool:
        return self.dreams[i] is not None

    def start(self, idx: Sequence[int], frames: np.ndarray, metadata: np.ndarray,
              actions: np.ndarray) -> None:
        """Start dreams `idx` from contexts frames (n, L, H, W, 3), metadata (n, L, M) and
        actions (n, L-1)."""
        from neuralgym.world_model import DreamState

        state = self.model.start(frames, metadata, actions)
        for n, i in enumerate(idx):
            row = DreamState(state.latents[n : n + 1], state.metadata[n : n + 1],
                             state.actions[n : n + 1])
            self.dreams[i] = _Dream(row, np.array(frames[n, -1]),
                                    np.array(metadata[n, -1], np.float32))

    def step(self, idx: Sequence[int], actions: Sequence[int], generator: torch.Generator
             ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Advance dreams `idx` by one step under `actions` (ints, already checked).

        Returns frames (n, H, W, 3) uint8, the previous metadata (n, M) and the new (n, M).
        """
        import torch

        from neuralgym.world_model import DreamState

        T = self.model.frames_per_call
        dreams: list[_Dream] = []
        for i in idx:
            d = self.dreams[i]
            if d is None:
                raise RuntimeError(f"{self.game.env_id}: call reset() before step()")
            dreams.append(d)
        groups: dict[tuple[int, int], list[int]] = defaultdict(list)
        for j, (d, a) in enumerate(zip(dreams, actions, strict=True)):
            p = d.plan
            if p is None or p.served >= T or p.action != a:  # (re)generate from the served
                groups[(d.state.latents.shape[1], d.state.metadata.shape[1])].append(j)
        H, W, C = self.game.obs_shape
        out = np.empty((len(idx), H, W, C), np.uint8)
        prev = np.empty((len(idx), len(self.game.metadata)), np.float32)
        cur = np.empty_like(prev)

        def serve(j: int, d: _Dream, p: _Plan, k: int) -> None:
            prev[j] = d.metadata
            d.frame, d.metadata = p.frames[k], p.metadata[k]
            out[j], cur[j] = d.frame, d.metadata

        device = self.model.device
        fresh: set[int] = set()
        if groups:  # new plans: one batched model call, first frames served batched
            K = self.model.denoiser.config.context
            order = [groups[key] for key in sorted(groups)]  # dreams by history length
            states = [_cat_states([dreams[j].state for j in js]) for js in order]
            regen = [j for js in order for j in js]
            acts = torch.tensor([[actions[j]] * T for j in regen], dtype=torch.int64,
                                device=device)  # (n, T)
            starts = np.cumsum([0] + [len(js) for js in order])  # each group's first row
            # g_phi per history length, the denoiser and the decoder for all at once
            metas = [self.model.predict_metadata(st, acts[r : r + len(js)], generator)
                     for st, js, r in zip(states, order, starts[:-1], strict=True)]
            frames, meta, new = self.model.step(_cat_states([_context(st, K) for st in states]),
                                                acts, generator, metadata=torch.cat(metas))
            assert frames is not None
            z = new.latents[:, -T:]  # (n, T, C, h, w) the latents of this call
            frames_np = frames.cpu().numpy()  # (n, T, H, W, 3)
            meta_np = meta.float().cpu().numpy()  # (n, T, M)
            for st, js, r0 in zip(states, order, starts[:-1], strict=True):
                rows = slice(r0, r0 + len(js))  # the served first frames join the histories
                served = st.push(z[rows, :1], meta[rows, :1], acts[rows, :1],
                                 self.model.history)
                for n, j in enumerate(js):
                    r, d = r0 + n, dreams[j]
                    d.plan = _Plan(int(actions[j]), z[r : r + 1], meta[r : r + 1],
                                   frames_np[r], meta_np[r], served=1)
                    d.state = DreamState(served.latents[n : n + 1],
                                         served.metadata[n : n + 1],
                                         served.actions[n : n + 1])
                    serve(j, d, d.plan, 0)
                    fresh.add(j)
        for j, d in enumerate(dreams):  # plans going on: the next of their frames
            if j in fresh:
                continue
            p = d.plan
            assert p is not None
            k = p.served
            a = torch.tensor([[actions[j]]], dtype=torch.int64, device=device)  # (1, 1)
            d.state = d.state.push(p.latents[:, k : k + 1], p.metadata_t[:, k : k + 1], a,
                                   self.model.history)
            p.served += 1
            serve(j, d, p, k)
        return out, prev, cur


# -- the env --------------------------------------------------------------------------------


class NeuralRetroEnv(gym.Env[np.ndarray, np.int64]):
    """A video game dreamed by a learned world model, in place of the emulator.

    ## Description

    The env plays the game of its id (Breakout, Pong, DemonAttack on the ALE; Sonic the
    Hedgehog and Airstriker on stable-retro) without the emulator: a world model trained on
    recorded play predicts each next frame. Every step runs, in order: the metadata predictor
    g_phi (the game's RAM variables: positions, score, lives, ...), the conditioned denoiser
    with a few-step sampler (the next latent), the VAE decoder (the frame at the game's
    native resolution), and the game's own reward and episode-end rules on the predicted
    metadata. `neuralgym.make_real(id)` is the real game with the same spaces, `info` keys
    and rules, so RL code switches between the two by changing one call.

    ## Action Space

    `Discrete(n)`: the game's action set (`neuralgym.get_spec(id).action_names`), e.g.
    Breakout `Discrete(4)`: 0 NOOP, 1 FIRE, 2 RIGHT, 3 LEFT; Pong and DemonAttack
    `Discrete(6)`: NOOP, FIRE, RIGHT, LEFT, RIGHTFIRE, LEFTFIRE; Genesis games: button combos
    held for 4 frames. One step is 4 emulator frames (frameskip 4). An action outside the
    space raises a ValueError listing the actions.

    ## Observation Space

    `Box(0, 255, (H, W, 3), uint8)`, the RGB frame at the game's native resolution: 210x160
    for the Atari games, 224x320 for the Genesis games (channel-last; SB3's `CnnPolicy`
    transposes it itself).

    ## Rewards

    The game spec's rule on (m_{t-1}, m_t), the same function the real env uses: Atari score
    difference (Pong: player point minus enemy point), Airstriker score difference (its
    scenario.json), Sonic progress to the right, the x difference (stable-retro's xpos
    scenario). They are computed from *predicted* metadata, so a model that mispredicts the
    score misreports the reward.

    ## Starting State

    `reset()` starts a dream from K real frames, their metadata and the actions between them
    (K = the model's context): by default one of the start contexts shipped in the model
    folder (`start_contexts.safetensors`), picked with the env's `np_random`; or from
    `options`: `{"frames": (L, H, W, 3) uint8, "metadata": (L, M), "actions": (L-1,)}`
    (L >= K), or `{"episode": folder-or-Episode, "step": t}` (the frames of a recorded
    episode up to step t >= K-1). The first observation is the last real frame.

    ## Episode End

    Termination: the game spec's rule on the predicted metadata (Breakout: lives 0; Pong: a
    player reaches 21; DemonAttack: no lives and the game-over flag; Airstriker: game over
    with no lives; Sonic: a life lost or the act's right end passed). Truncation:
    `max_episode_steps` from the spec (27,000 for the Atari games, 4,500 for the Genesis
    ones), by the `TimeLimit` wrapper that `gym.make` adds; this class does not count steps.

    ## Arguments

    ```python
    gym.make("NeuralBreakout-v0", model=None, device="cpu", denoising_steps=None,
             frames_per_call=None, decoder="auto", cuda_graphs=False, bf16_weights=False,
             sample_metadata=False, render_mode=None)
    ```

    * `model`: a world-model folder (config.json + safetensors, `WorldModel.from_pretrained`);
      None = the model shipped with neuralgym for the game (`predictors.shipped_model(id)`).
      A missing, corrupt or other-game folder is a clear error.
    * `device`: "cpu" (default) or "cuda" (bf16 autocast there).
    * `denoising_steps`: sampler steps per model call (default: the folder's `sampler.steps`);
      fewer is faster, more is sharper. The sampler is separate from the denoiser, so this is
      not a retraining.
    * `frames_per_call`: frames generated per model call (default: the model's T). A
      multi-frame model assumes the current action repeats and serves its T frames over the
      next steps; an action different from the plan throws the rest away and generates again
      from the frames actually served. Only the T the model was trained for is accepted.
    * `decoder`: what turns latents into frames: "auto" (the folder's choice, its
      config.json "decode_with"), "vae" (the VAE's own decoder: the sharper frames) or
      "fast" (the folder's small `FrameDecoder`: several times cheaper, blurrier).
    * `cuda_graphs`: with device="cuda", replay the denoiser and the decoder from CUDA
      graphs (`WorldModel.enable_cuda_graphs`): several times faster at small batches; the
      first step of each batch size captures its graph and is slow.
    * `bf16_weights`: hold the denoiser's backbone and the fast decoder in bf16
      (`WorldModel.hold_in_bf16`): on an H100 29% more frames/s batched, at about 1-2% more
      MSE at 1-8 steps ahead (benchmarks/results/breakout-gpu-session6-bf16-weights.meta.json).
    * `render_mode`: None or "rgb_array" (`render()` returns the last frame).

    Determinism: `reset(seed=s)` seeds a `torch.Generator` on the model's device that every
    sampler call draws from, so the same seed and actions give the same frames.

    Scores and lives: g_phi's most likely class by default; with `sample_metadata=True`
    (`gym.make(..., sample_metadata=True)`) they are drawn from its predicted distributions
    with the same generator (`WorldModel.predict_metadata`), so a point g_phi gives
    probability 0.4 is scored, and rewarded, in 40% of dreams.

    ## Version History

    * v0: initial version (one world model per game; metadata-led step; multi-frame mode).
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 15}

    def __init__(self, env_id: str, model: str | os.PathLike | None = None, device: str = "cpu",
                 denoising_steps: int | None = None, frames_per_call: int | None = None,
                 render_mode: str | None = None, cuda_graphs: bool = False,
                 decoder: str = "auto", bf16_weights: bool = False,
                 sample_metadata: bool = False):
        if render_mode not in (None, "rgb_array"):
            raise ValueError(f"render_mode must be None or 'rgb_array', got {render_mode!r}")
        self.game = get_spec(env_id)
        self.render_mode = render_mode
        self.observation_space = gym.spaces.Box(0, 255, self.game.obs_shape, np.uint8)
        self.action_space = gym.spaces.Discrete(self.game.n_actions)
        self.model, self.model_path, self.start_contexts = load_dream_model(
            env_id, model, device, denoising_steps, frames_per_call, cuda_graphs, decoder,
            bf16_weights, sample_metadata)
        self._dreams = DreamBatch(self.model, self.game, 1)
        self._generator: torch.Generator | None = None

    @property
    def frames_per_call(self) -> int:
        return self.model.frames_per_call

    def _shipped_context(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """One of the folder's start contexts, picked with np_random."""
        if self.start_contexts is None:
            from neuralgym.start_contexts import StartContextsError, start_contexts_path

            raise StartContextsError(
                f"{self.game.env_id}: {start_contexts_path(self.model_path)} is missing, so "
                "reset() has no start context to pick; write it with `python "
                f"training/make_start_contexts.py --data DATASET --model {self.model_path}`, "
                f"or pass reset(options=...): {expected_options(self.game, self.model.context)}"
            )
        i = int(self.np_random.integers(len(self.start_contexts)))
        return self.start_contexts[i]

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None
              ) -> tuple[np.ndarray, dict[str, Any]]:
        import torch

        given = None  # checked before anything changes, so a bad dict leaves the env as it was
        if options:
            given = context_from_options(options, self.game, self.model.context,
                                         self.model.history)
        super().reset(seed=seed)
        frames, metadata, actions = given or self._shipped_context()
        if seed is not None or self._generator is None:
            self._generator = torch.Generator(self.model.device).manual_seed(
                int(self.np_random.integers(2**63 - 1)))
        self._dreams.start([0], frames[None], metadata[None], actions[None])
        return np.array(frames[-1]), self.game.info(np.array(metadata[-1], np.float32))

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        if not self._dreams.started(0) or self._generator is None:
            raise RuntimeError(f"{self.game.env_id}: call reset() before step()")
        a = self.game.check_action(action)
        frames, prev, cur = self._dreams.step([0], [a], self._generator)
        reward = float(self.game.rewards(prev[0], cur[0]))
        terminated = bool(self.game.terminations(prev[0], cur[0]))
        return frames[0], reward, terminated, False, self.game.info(cur[0].copy())

    def render(self) -> np.ndarray | None:
        dream = self._dreams.dreams[0]
        if self.render_mode is None or dream is None:
            return None
        return dream.frame.copy()
