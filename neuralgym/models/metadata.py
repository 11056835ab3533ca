"""The metadata predictor g_phi: the next metadata vector from the recent past.

The step of a world model starts here ("metadata leads, pixels follow"):

    m_t = g_phi(m_{t-1}, m_{t-2}, Z_{t-1}, a_{t-1})

g_phi runs a sequence model (GRU, LSTM or a causal transformer) over the last L <= W steps.
The input of the step that predicts m_tau is

    [normalised m_{tau-1}, normalised m_{tau-2}, features of Z_{tau-1}, embedding of a_{tau-1}]

(with `relative_classes`, plus looked-up rows of the positions' differences and velocities)
and its output at the last step is m_t. It is stateless: the caller passes the last W steps
each call, which keeps batched envs simple and deterministic.

Variables of kind "continuous" regress the normalised value (MSE), as a residual on the
normalised m_{t-1}. Variables of kind "categorical" (lives, scores, levels) are classified
(cross-entropy over `num_classes` values 0 .. num_classes-1) when `categorical_as_classes` is
on and they have a class count, with a learned bonus on the logit of m_{t-1}'s class;
otherwise they are regressed like the rest and rounded to integers at prediction time (as
are all variables marked `integer`: whole numbers in the data). With the zero-initialised
output layer an untrained model is the copy-previous baseline m_t = m_{t-1}, and training
learns the changes (most variables change on few steps).

With `delta_classes` D > 0 the whole-number regressed variables (RAM positions) are also
"stepped": their step change m_t - m_{t-1} is classified over -D..D, one class each, plus one
class for a larger jump (a serve, a respawn), where the regression gives the value. A
regression of a ball's change averages its speeds and its bounces with its misses, and in
closed loop the averaged speeds compound (a Pong ball that always moves 4 pixels a step
dreamt at 1-5); a class is exact, and a bounce or a miss is one of two classes, not their
mean. The class of m_{t-1} - m_{t-2} gets a learned bonus (init 4), so an untrained stepped
variable moves at constant velocity (after a jump: the regression, which copies m_{t-1}).

Indices, for one window that predicts m_t from L steps (L = W in training):

    metadata  (B, L+1, M)  m_{t-L-1} .. m_{t-1}   (raw scale)
    latents   (B, L, C, h, w)  Z_{t-L} .. Z_{t-1}
    actions   (B, L)       a_{t-L} .. a_{t-1}     (a_s leads from frame s to frame s+1)

Step s (0 <= s < L) predicts m_{t-L+s+1} from m_{tau-1} = metadata[:, s+1],
m_{tau-2} = metadata[:, s], Z_{tau-1} = latents[:, s] and a_{tau-1} = actions[:, s]; the
last step (s = L-1) uses metadata[:, -1] = m_{t-1}, metadata[:, -2] = m_{t-2},
latents[:, -1] = Z_{t-1}, actions[:, -1] = a_{t-1}. A training batch adds m_t as one more
metadata frame, (B, L+2, M), and every step is supervised (causal, so a step never sees
its target); a call with L < W at inference is therefore exactly what the early steps of
training saw.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from neuralgym.latents import LatentCache

KINDS = ("gru", "lstm", "transformer")
REG_LOSSES = ("mse", "l1")
# a regressed variable's step is an "event" (a bounce, a jump) where it departs from its
# constant-velocity guess m_{t-1} + (m_{t-1} - m_{t-2}) by more than this (raw units)
EVENT_TOL = 0.5


def velocity_events(target: Any, previous: Any, before: Any) -> Any:
    """Where m_t departs from the constant-velocity guess 2 m_{t-1} - m_{t-2} by more than
    `EVENT_TOL`: target = m_t, previous = m_{t-1}, before = m_{t-2}, alike shapes, raw scale
    (tensors or numpy arrays; a boolean mask of that shape)."""
    return abs(target - (2 * previous - before)) > EVENT_TOL


def masked_mean(err: Tensor, weight: Tensor, dim: tuple[int, ...]) -> Tensor:
    """Mean of `err` over `dim` weighted by `weight` (alike shapes); 0 where no weight is set."""
    return (err * weight).sum(dim=dim) / weight.sum(dim=dim).clamp(min=1e-6)


# latents (B, n, C, h, w), actions (B, n), metadata (B, 2, M) -> the next latent (B, C, h, w)
Dream = Callable[[Tensor, Tensor, Tensor], Tensor]
MAX_CLASSES = 256


@dataclass
class MetadataConfig:
    """Architecture of g_phi and what it knows of the data (names, kinds, normalisation)."""

    metadata_names: tuple[str, ...] = ()
    kinds: tuple[str, ...] = ()  # per variable: "continuous" | "categorical"
    num_classes: tuple[int, ...] = ()  # per variable: classes 0..n-1; 0 = always regress
    mean: tuple[float, ...] = ()  # per variable, raw scale (train split)
    std: tuple[float, ...] = ()  # per variable, raw scale (train split), > 0
    integer: tuple[bool, ...] = ()  # per variable: whole numbers in the data, so predictions
    # are rounded (RAM bytes, scores: a dream reward = score delta is then exactly 0 between
    # events); empty = the categorical variables only
    n_actions: int = 4
    latent_channels: int = 16
    latent_hw: tuple[int, int] = (52, 40)
    kind: str = "gru"  # "gru" | "lstm" | "transformer"
    hidden: int = 256
    layers: int = 2
    heads: int = 4  # transformer only
    window: int = 8  # W: the most steps one call sees
    action_dim: int = 32
    latent_width: int = 32  # channels of the latent conv stack
    latent_downsamples: int = 2  # stride-2 convs in the latent conv stack
    latent_pool: int = 4  # the conv output is pooled to (pool, pool), then flattened
    latent_dim: int = 128  # size of the latent feature per step
    categorical_as_classes: bool = True
    residual: bool = True  # regress m_t - m_{t-1} (normalised) instead of m_t
    delta_classes: int = 0  # D > 0: classify whole-number regressed variables' step change
    # a stepped variable's jump regresses m_t itself (normalised), not m_t - m_{t-1}: a jump
    # goes to a fixed place (a ball out of play at 0, a serve), wherever it came from
    jump_absolute: bool = False
    # Z_{t-1} is an input; off: g_phi reads only past metadata and actions, so in the dream
    # a dreamt frame that disagrees with the metadata cannot steer it (a game whose RAM
    # variables hold its whole state, as Pong's do)
    latent_input: bool = True
    # R > 0: the positions' (`relative`) differences m_{tau-1}[i] - m_{tau-1}[j], one per pair,
    # and their velocities m_{tau-1}[i] - m_{tau-2}[i] are inputs too, each held to -R..R
    # and looked up in a table (zero at first), so that a rule that turns on one pixel (a
    # Pong ball's angle off a paddle: one pixel of ball_y - paddle_y turns -4 into -7) is a
    # lookup, not a fine cut through normalised inputs
    relative_classes: int = 0

    def __post_init__(self) -> None:
        m = len(self.metadata_names)
        for name in ("kinds", "num_classes", "mean", "std"):
            if len(getattr(self, name)) != m:
                raise ValueError(f"MetadataConfig.{name} has {len(getattr(self, name))} "
                                 f"entries for {m} metadata variables")
        if m == 0:
            raise ValueError("MetadataConfig needs at least one metadata variable")
        if self.integer and len(self.integer) != m:
            raise ValueError(f"MetadataConfig.integer has {len(self.integer)} entries for {m} "
                             "metadata variables (or leave it empty)")
        if self.kind not in KINDS:
            raise ValueError(f"MetadataConfig.kind must be one of {KINDS}, got {self.kind!r}")
        bad = [k for k in self.kinds if k not in ("continuous", "categorical")]
        if bad:
            raise ValueError(f"unknown metadata kinds {bad}; use 'continuous' or 'categorical'")
        if any(not s > 0 for s in self.std):
            raise ValueError(f"MetadataConfig.std must be > 0, got {self.std}")
        if any(not 0 <= n <= MAX_CLASSES for n in self.num_classes):
            raise ValueError(f"num_classes must lie in 0..{MAX_CLASSES}, got {self.num_classes}")
        for name in ("delta_classes", "relative_classes"):
            if not 0 <= getattr(self, name) <= MAX_CLASSES // 2:
                raise ValueError(f"{name} must lie in 0..{MAX_CLASSES // 2}, "
                                 f"got {getattr(self, name)}")

    @property
    def rounded(self) -> tuple[bool, ...]:
        """Per variable: predictions come out as whole numbers."""
        return self.integer or tuple(k == "categorical" for k in self.kinds)

    @property
    def classified(self) -> tuple[int, ...]:
        """Indices of the variables predicted as classes."""
        if not self.categorical_as_classes:
            return ()
        return tuple(i for i, (k, n) in enumerate(zip(self.kinds, self.num_classes, strict=True))
                     if k == "categorical" and n >= 2)

    @property
    def regressed(self) -> tuple[int, ...]:
        """Indices of the variables predicted by regression."""
        return tuple(i for i in range(len(self.metadata_names)) if i not in self.classified)

    @property
    def stepped(self) -> tuple[int, ...]:
        """Indices of the regressed variables whose step change is classified too
        (`delta_classes` > 0: the whole-number ones)."""
        if self.delta_classes <= 0:
            return ()
        return tuple(i for i in self.regressed if self.rounded[i])

    @property
    def relative(self) -> tuple[int, ...]:
        """Indices of the positions whose differences and velocities are looked up
        (`relative_classes` > 0): the whole-number continuous variables."""
        if self.relative_classes <= 0:
            return ()
        return tuple(i for i, k in enumerate(self.kinds) if k == "continuous" and self.rounded[i])

    @property
    def relative_pairs(self) -> tuple[tuple[int, int], ...]:
        """The (i, j) of each looked-up difference m[i] - m[j] of positions, i before j."""
        r = self.relative
        return tuple((i, j) for a, i in enumerate(r) for j in r[a + 1:])

    @property
    def step_classes(self) -> int:
        """Classes of a stepped variable: changes -D..D and one for a larger jump."""
        return 2 * self.delta_classes + 2


def widen_classes(model: MetadataPredictor, num_classes: Sequence[int]) -> MetadataPredictor:
    """A copy of `model` whose classified variables have `num_classes` classes (at least as
    many as now; the others' entries are ignored), for fine-tuning on data or a game with
    values the committed model never saw (a PPO agent's Pong score past random play's 4).

    Every weight is copied. Class k's new logits start as copies of its top old class's, one
    lower: the top old class was where the old model put every value at or above it, so the
    widened model predicts what the old one did for every m_{t-1} it could represent, and a
    value above the old range is copied (the residual copy bonus) instead of being clamped
    to the top old class.
    """
    c = model.config
    wanted = [max(int(num_classes[i]), c.num_classes[i]) if i in c.classified else n
              for i, n in enumerate(c.num_classes)]
    if list(c.num_classes) == wanted:
        return model
    wide, old_w, old_b, _ = _rebuilt(model, replace(c, num_classes=tuple(wanted)))
    new_w, new_b = wide.head[-1].weight.data, wide.head[-1].bias.data
    r = len(model.regressed)
    new_w[:r], new_b[:r] = old_w[:r], old_b[:r]
    old_at, new_at = r, r
    for n_old, n_new in zip(model.class_sizes, wide.class_sizes, strict=True):
        new_w[new_at:new_at + n_old] = old_w[old_at:old_at + n_old]
        new_b[new_at:new_at + n_old] = old_b[old_at:old_at + n_old]
        top = old_at + n_old - 1
        new_w[new_at + n_old:new_at + n_new] = old_w[top]
        new_b[new_at + n_old:new_at + n_new] = old_b[top] - 1.0
        old_at, new_at = old_at + n_old, new_at + n_new
    new_w[new_at:], new_b[new_at:] = old_w[old_at:], old_b[old_at:]  # the step classes
    return wide


def _to_add(has: int, wanted: int, what: str) -> bool:
    """Whether a g_phi whose range of some classes is -has..has must be rebuilt for
    -wanted..wanted: not where it has that range; an error where it has another."""
    if has == wanted:
        return False
    if has:
        raise ValueError(f"this g_phi {what} over -{has}..{has} already; train a new one for "
                         "another range")
    return True


def with_step_classes(model: MetadataPredictor, delta_classes: int) -> MetadataPredictor:
    """A copy of `model` that classifies its whole-number regressed variables' step changes
    over -D..D (`MetadataConfig.delta_classes` = D), for fine-tuning a g_phi that only
    regressed them. Every weight is copied; the new step classes start untrained, at
    constant velocity (their bonus), so the copy predicts what the model did except that its
    stepped variables keep their last change until trained."""
    c = model.config
    if not _to_add(c.delta_classes, delta_classes, "classifies step changes"):
        return model
    new, old_w, old_b, _ = _rebuilt(model, replace(c, delta_classes=delta_classes))
    new.head[-1].weight.data[:len(old_w)] = old_w
    new.head[-1].bias.data[:len(old_b)] = old_b
    return new


def with_relative(model: MetadataPredictor, relative_classes: int) -> MetadataPredictor:
    """A copy of `model` that also reads its positions' differences and velocities
    (`MetadataConfig.relative_classes` = R), for fine-tuning a g_phi without them. Every
    weight is copied and the new tables start at zero, so the copy predicts what the model
    did until trained."""
    c = model.config
    if not _to_add(c.relative_classes, relative_classes, "reads differences"):
        return model
    new = MetadataPredictor(replace(c, relative_classes=relative_classes)).to(model.mean.device)
    loaded = new.load_state_dict(model.state_dict(), strict=False)
    assert not loaded.unexpected_keys and loaded.missing_keys == [
        "relative_embedding.weight"], loaded
    return new


def classes_as_steps(model: MetadataPredictor, copy_bias: float = 8.0) -> MetadataPredictor:
    """A copy of `model` whose classified variables (scores, lives) are stepped instead: their
    step change m_t - m_{t-1} is classified over -D..D (`MetadataConfig.delta_classes`, which
    the model must have) like the positions', and no longer their value. A class per value is
    learnt value by value, and a Pong score that random play seldom reaches (3, 5) is one the
    model is unsure of, where any class above the fed score pays a point; a change of 0 or +1
    is learnt at every score alike. Every other weight is copied; the new step classes start
    at "no change" (a bias of `copy_bias` on it; no constant-velocity bonus, since a point is
    not followed by another), their regressions (used for jumps beyond D only) at m_{t-1}."""
    c = model.config
    if not model.classified:
        return model
    if not c.stepped:
        raise ValueError("classes as steps needs step classes; give the model some first "
                         "(with_step_classes, train_metadata.py --delta-classes D)")
    new, old_w, old_b, left = _rebuilt(model, replace(c, categorical_as_classes=False))
    old_bonus = left["step_logit"]  # (S,): more variables are stepped now
    new_w, new_b = new.head[-1].weight.data, new.head[-1].bias.data
    new_w.zero_()
    new_b.zero_()
    n_reg, n_steps = len(new.regressed), c.step_classes
    old_steps = len(model.regressed) + sum(model.class_sizes)  # first step row of the old
    bonus = new.step_logit.data
    for j, i in enumerate(new.regressed):
        if i in model.regressed:
            k = model.regressed.index(i)
            new_w[j], new_b[j] = old_w[k], old_b[k]
    for j, i in enumerate(new.stepped):
        rows = slice(n_reg + j * n_steps, n_reg + (j + 1) * n_steps)
        if i in model.stepped:
            k = model.stepped.index(i)
            old = slice(old_steps + k * n_steps, old_steps + (k + 1) * n_steps)
            new_w[rows], new_b[rows] = old_w[old], old_b[old]
            bonus[j] = old_bonus[k]
        else:  # a former class: no change until trained
            new_b[rows.start + c.delta_classes] = copy_bias
            bonus[j] = 0.0
    return new


def jumps_absolute(model: MetadataPredictor) -> MetadataPredictor:
    """A copy of `model` whose stepped variables' jumps regress m_t itself, no longer the
    change from m_{t-1} (`MetadataConfig.jump_absolute`). A jump goes to a fixed place (Pong's
    ball to 0 when a point is scored, to the serve after the pause), and a change learnt from
    every place the jump starts from can miss it by a few pixels: a value the game never
    shows, fed back in closed loop. Every weight is copied; the stepped variables'
    regressions start at their mean (zero weights), to be trained at the jumps."""
    c = model.config
    if c.jump_absolute:
        return model
    if not c.stepped:
        raise ValueError("absolute jumps need step classes; give the model some first "
                         "(with_step_classes, train_metadata.py --delta-classes D)")
    new = MetadataPredictor(replace(c, jump_absolute=True)).to(model.mean.device)
    new.load_state_dict(model.state_dict())
    rows = [model.regressed.index(i) for i in model.stepped]
    new.head[-1].weight.data[rows] = 0.0
    new.head[-1].bias.data[rows] = 0.0
    return new


def without_latents(model: MetadataPredictor, features: Tensor | None = None
                    ) -> MetadataPredictor:
    """A copy of `model` that reads no latents (`MetadataConfig.latent_input` off): its
    latent encoder is dropped, and so are the input layer's columns for its features. With
    `features` (D,), a typical step's latent features (their mean over training frames), the
    dropped columns' contribution at those features is folded into the input layer's bias,
    so the copy predicts what the model did for any window whose latent features are
    `features`; fine-tuning then teaches it to do without the frames."""
    c = model.config
    if not c.latent_input:
        return model
    new = MetadataPredictor(replace(c, latent_input=False)).to(model.mean.device)
    state = {k: v for k, v in model.state_dict().items() if not k.startswith("latent_encoder.")}
    m = 2 * len(c.metadata_names)
    w = state["input_proj.weight"]  # (H, 2M + D + A)
    state["input_proj.weight"] = torch.cat([w[:, :m], w[:, m + c.latent_dim:]], 1)  # (H, 2M + A)
    if features is not None:
        state["input_proj.bias"] = state["input_proj.bias"] + (
            w[:, m:m + c.latent_dim] @ features.to(w))  # (H,)
    new.load_state_dict(state)
    return new


def with_variables(model: MetadataPredictor, names: Sequence[str], kinds: Sequence[str],
                   num_classes: Sequence[int], mean: Sequence[float], std: Sequence[float],
                   integer: Sequence[bool]) -> MetadataPredictor:
    """A copy of `model` that predicts the variables `names` (with the kinds, classes and
    normalisation given for each), for a game whose metadata gained variables: every
    variable of the model must be among `names`, and keeps its weights, classes and
    normalisation (the per-variable arguments are read for the new ones only). A new
    variable's input columns and outputs start at zero: the copy predicts what the model did
    for the old variables, and for a new one it copies m_{t-1} (its step classes at constant
    velocity) until trained."""
    c = model.config
    old = list(c.metadata_names)
    missing = [n for n in old if n not in names]
    if missing or len(set(names)) != len(names):
        raise ValueError(f"the new variables {list(names)} must hold each of g_phi's {old} "
                         f"once (missing: {missing})")
    if c.relative_classes:
        raise ValueError("a g_phi that looks up its positions' differences "
                         "(relative_classes) cannot gain variables; train a new one")
    if list(names) == old:
        return model
    at = [old.index(n) if n in old else None for n in names]  # old index of each new variable

    def pick(own: tuple, given: Sequence) -> tuple:
        return tuple(own[i] if i is not None else given[j] for j, i in enumerate(at))

    integer_old = c.integer or c.rounded
    config = replace(c, metadata_names=tuple(names), kinds=pick(c.kinds, kinds),
                     num_classes=pick(c.num_classes, num_classes), mean=pick(c.mean, mean),
                     std=pick(c.std, std), integer=pick(tuple(integer_old), integer))
    new = MetadataPredictor(config).to(model.mean.device)
    state, own = model.state_dict(), new.state_dict()
    m, m_new = len(old), len(names)
    w = state["input_proj.weight"]  # (H, 2M + features + A)
    w_new = torch.zeros_like(own["input_proj.weight"])  # (H, 2M' + features + A)
    for j, i in enumerate(at):
        if i is not None:  # m_{t-1} and m_{t-2} columns
            w_new[:, j], w_new[:, m_new + j] = w[:, i], w[:, m + i]
    w_new[:, 2 * m_new:] = w[:, 2 * m:]
    state["input_proj.weight"] = w_new

    # output rows: [regressions | class logits per classified | step logits per stepped]
    def rows(net: MetadataPredictor) -> dict[tuple[str, int], slice]:
        out, r = {}, 0
        for i in net.regressed:
            out["reg", i], r = slice(r, r + 1), r + 1
        for i, n in zip(net.classified, net.class_sizes, strict=True):
            out["cls", i], r = slice(r, r + n), r + n
        for i in net.stepped:
            out["step", i], r = slice(r, r + net.config.step_classes), r + net.config.step_classes
        return out

    head = f"head.{len(model.head) - 1}"
    old_rows, new_rows = rows(model), rows(new)
    weight = torch.zeros_like(own[f"{head}.weight"])  # (n_out', H)
    bias = torch.zeros_like(own[f"{head}.bias"])  # (n_out',)
    for (part, j), dst in new_rows.items():
        i = at[j]
        if i is not None and (part, i) in old_rows:
            weight[dst], bias[dst] = state[f"{head}.weight"][old_rows[part, i]], \
                state[f"{head}.bias"][old_rows[part, i]]
    state[f"{head}.weight"], state[f"{head}.bias"] = weight, bias
    for key, mine, theirs in (("copy_logit", new.classified, model.classified),
                              ("step_logit", new.stepped, model.stepped)):
        if key in own:  # per classified / stepped variable; a new one keeps its initial bonus
            bonus = own[key].clone()
            for k, j in enumerate(mine):
                if at[j] is not None and at[j] in theirs:
                    bonus[k] = state[key][theirs.index(at[j])]
            state[key] = bonus
    new.load_state_dict(state)
    return new


def _rebuilt(model: MetadataPredictor, config: MetadataConfig
             ) -> tuple[MetadataPredictor, Tensor, Tensor, dict[str, Tensor]]:
    """A model of `config` holding all of `model`'s weights but its output layer's and those
    the new one lacks or shapes otherwise (a bonus per class or stepped variable), and those
    left: the old output layer's weight and bias and the other weights left out, by name."""
    new = MetadataPredictor(config).to(model.mean.device)
    state, own = model.state_dict(), new.state_dict()
    head = f"head.{len(model.head) - 1}"
    old_w, old_b = state.pop(f"{head}.weight"), state.pop(f"{head}.bias")  # (n_out, H)
    left = {k: state.pop(k) for k in list(state) if k not in own or own[k].shape != state[k].shape}
    loaded = new.load_state_dict(state, strict=False)  # all but the output layer
    assert not loaded.unexpected_keys and {f"{head}.weight", f"{head}.bias"} <= set(
        loaded.missing_keys) <= {f"{head}.weight", f"{head}.bias", "step_logit"}, loaded
    return new, old_w, old_b, left


def hold_to_limits(pred: Tensor, last: Tensor, limits: Tensor) -> Tensor:
    """m_t (B, M) held to the game's per-step limits (2, M) (`GameSpec.step_limits`) around
    m_{t-1} (B, M): m_t - m_{t-1} in [lo, hi]."""
    return pred.clamp(last + limits[0], last + limits[1])


@dataclass
class Heads:
    """g_phi's outputs at some steps (shapes (...) = (B, L) or (B,)): regressions (..., R)
    normalised, class logits [(..., n_k)], step-class logits of the stepped variables
    (..., S, 2D+2) or None, and the m_{t-1} (..., M) raw that the steps move on."""

    reg: Tensor
    logits: list[Tensor]
    steps: Tensor | None
    last: Tensor

    def last_step(self) -> Heads:
        """The heads at a window's last step, (B, L, ...) -> (B, ...), detached."""
        return Heads(self.reg[:, -1].detach(), [lg[:, -1].detach() for lg in self.logits],
                     None if self.steps is None else self.steps[:, -1].detach(),
                     self.last[:, -1])


class MetadataPredictor(nn.Module):
    """g_phi: m_t from (m_{t-1}, m_{t-2}, Z_{t-1}, a_{t-1}) over a window of past steps."""

    def __init__(self, config: MetadataConfig):
        super().__init__()
        self.config = c = config
        m = len(c.metadata_names)
        self.classified = list(c.classified)
        self.regressed = list(c.regressed)
        self.class_sizes = [c.num_classes[i] for i in self.classified]
        self.register_buffer("mean", torch.tensor(c.mean, dtype=torch.float32), persistent=False)
        self.register_buffer("std", torch.tensor(c.std, dtype=torch.float32), persistent=False)
        self.register_buffer("rounded", torch.tensor(c.rounded, dtype=torch.bool),
                             persistent=False)
        self.stepped = list(c.stepped)
        # per regression: 1 where it is a residual on m_{t-1}, 0 where it gives m_t itself
        self.register_buffer("residual_on", torch.tensor(
            [float(c.residual and not (c.jump_absolute and i in self.stepped))
             for i in self.regressed]), persistent=False)

        # Z_{t-1} -> a vector: a small conv stack, pooled to a coarse grid (keeps where things
        # are), flattened and projected (none without `latent_input`: features of width 0).
        if c.latent_input:
            convs: list[nn.Module] = [nn.Conv2d(c.latent_channels, c.latent_width, 3, padding=1),
                                      nn.SiLU()]
            for _ in range(c.latent_downsamples):
                convs += [nn.Conv2d(c.latent_width, c.latent_width, 3, stride=2, padding=1),
                          nn.SiLU()]
            convs += [nn.AdaptiveAvgPool2d(c.latent_pool), nn.Flatten(),
                      nn.Linear(c.latent_width * c.latent_pool**2, c.latent_dim), nn.SiLU()]
            self.latent_encoder = nn.Sequential(*convs)
        self.action_embedding = nn.Embedding(c.n_actions, c.action_dim)
        self.input_proj = nn.Linear(2 * m + c.latent_dim * c.latent_input + c.action_dim,
                                    c.hidden)
        if c.relative:  # one table of 2R+1 rows per difference and per velocity, zero at first
            pairs = torch.tensor(c.relative_pairs).reshape(-1, 2)  # (P, 2)
            self.register_buffer("pair_index", pairs, persistent=False)
            self.register_buffer("velocity_index", torch.tensor(c.relative), persistent=False)
            n_tables = len(pairs) + len(c.relative)
            self.register_buffer("table_offset", torch.arange(n_tables) * (
                2 * c.relative_classes + 1), persistent=False)
            # the rows of one step are summed as they are looked up: no (B, L, P + V, H)
            self.relative_embedding = nn.EmbeddingBag(
                n_tables * (2 * c.relative_classes + 1), c.hidden, mode="sum")
            nn.init.zeros_(self.relative_embedding.weight)

        if c.kind == "gru":
            self.backbone: nn.Module = nn.GRU(c.hidden, c.hidden, c.layers, batch_first=True)
        elif c.kind == "lstm":
            self.backbone = nn.LSTM(c.hidden, c.hidden, c.layers, batch_first=True)
        else:
            self.position = nn.Parameter(torch.zeros(c.window, c.hidden))
            nn.init.normal_(self.position, std=0.02)
            layer = nn.TransformerEncoderLayer(c.hidden, c.heads, 4 * c.hidden, dropout=0.0,
                                               activation="gelu", batch_first=True,
                                               norm_first=True)
            self.backbone = nn.TransformerEncoder(layer, c.layers, norm=nn.LayerNorm(c.hidden),
                                                  enable_nested_tensor=False)

        # output layer: [regressions (R) | class logits (sum n_k) | step logits (S x 2D+2)]
        n_out = len(self.regressed) + sum(self.class_sizes) + len(self.stepped) * c.step_classes
        self.head = nn.Sequential(nn.Linear(c.hidden, c.hidden), nn.SiLU(),
                                  nn.Linear(c.hidden, n_out))
        nn.init.zeros_(self.head[-1].weight)  # with `residual`, an untrained model is the
        nn.init.zeros_(self.head[-1].bias)  # copy-previous baseline for every variable:
        if c.residual and self.classified:  # regressions add m_{t-1}, classes get a learned
            # bonus on the logit of m_{t-1}'s class (init 4: p(copy) = 0.92 of 6 classes)
            self.copy_logit = nn.Parameter(torch.full((len(self.classified),), 4.0))
        if self.stepped:  # a bonus on the class of m_{t-1} - m_{t-2}: constant velocity
            self.step_logit = nn.Parameter(torch.full((len(self.stepped),), 4.0))

    # -- pieces ----------------------------------------------------------------------------

    def normalise(self, metadata: Tensor) -> Tensor:
        return (metadata.float() - self.mean) / self.std

    def encode_latents(self, latents: Tensor) -> Tensor:
        """Latents (B, L, C, h, w) -> per-step features (B, L, D); D = 0 without
        `latent_input` (the latents are not read)."""
        c = self.config
        if not c.latent_input:  # any latents, or none (B, L, 0, 0, 0)
            return latents.new_zeros(*latents.shape[:2], 0, dtype=torch.float32)  # (B, L, 0)
        if tuple(latents.shape[2:]) != (c.latent_channels, *c.latent_hw):
            raise ValueError(f"g_phi was built for latents {(c.latent_channels, *c.latent_hw)}, "
                             f"got {tuple(latents.shape[2:])}")
        z = self.latent_encoder(latents.flatten(0, 1).float())  # (B*L, D)
        return z.reshape(*latents.shape[:2], -1)  # (B, L, D)

    def _sequence(self, metadata: Tensor, features: Tensor, actions: Tensor) -> Tensor:
        """Run the backbone. metadata (B, L+1, M) raw (metadata[:, 1:] is each step's
        m_{tau-1}, [:, :-1] its m_{tau-2}), features (B, L, D) of the latents
        (`encode_latents`), actions (B, L). Returns the hidden states (B, L, H).
        """
        c = self.config
        b, length = actions.shape
        if length < 1 or length > c.window:
            raise ValueError(f"g_phi takes 1 to {c.window} steps, got {length}")
        if metadata.shape[1] != length + 1 or features.shape[1] != length:
            raise ValueError(
                f"g_phi: {length} actions need {length + 1} metadata frames and {length} latents"
                f", got {metadata.shape[1]} and {features.shape[1]}"
            )
        norm = self.normalise(metadata)  # (B, L+1, M)
        prev1, prev2 = norm[:, 1:], norm[:, :-1]  # (B, L, M) m_{tau-1}, m_{tau-2}
        a = self.action_embedding(actions.long())  # (B, L, A)
        x = self.input_proj(torch.cat([prev1, prev2, features.to(prev1.dtype), a],
                                      dim=-1))  # (B, L, H)
        if c.relative:
            x = x + self.relative_input(metadata[:, 1:].float(), metadata[:, :-1].float())
        if c.kind == "transformer":
            x = x + self.position[:length]
            mask = nn.Transformer.generate_square_subsequent_mask(length, device=x.device)
            h = self.backbone(x, mask=mask, is_causal=True)  # (B, L, H)
        else:
            h, _ = self.backbone(x)  # (B, L, H)
        return h

    def relative_input(self, prev: Tensor, before: Tensor) -> Tensor:
        """Raw m_{tau-1} and m_{tau-2} (B, L, M) -> the sum of the looked-up rows (B, L, H)
        of the positions' differences and velocities (`MetadataConfig.relative_classes`)."""
        big = self.config.relative_classes
        p = self.pair_index  # (P, 2)
        diffs = torch.cat([prev[..., p[:, 0]] - prev[..., p[:, 1]],
                           prev[..., self.velocity_index] - before[..., self.velocity_index]],
                          dim=-1)  # (B, L, P + V)
        rows = diffs.round().long().clamp(-big, big) + big + self.table_offset  # (B, L, P + V)
        summed = self.relative_embedding(rows.flatten(0, 1))  # (B*L, H)
        return summed.unflatten(0, rows.shape[:2])  # (B, L, H)

    def _heads(self, h: Tensor, prev: Tensor, before: Tensor) -> Heads:
        """h (..., H), prev and before (..., M) raw m_{t-1} and m_{t-2} -> the heads."""
        c = self.config
        out = self.head(h).float()  # (..., R + sum n_k + S * (2D+2))
        n_reg, n_cls = len(self.regressed), sum(self.class_sizes)
        reg, flat = out[..., :n_reg], out[..., n_reg:n_reg + n_cls]
        logits = list(flat.split(self.class_sizes, dim=-1)) if self.class_sizes else []
        if c.residual:
            norm = self.normalise(prev)[..., self.regressed]  # (..., R)
            reg = reg + norm * self.residual_on  # (..., R)
            if logits:
                prev_class = self.class_targets(prev)  # (..., K)
                logits = [lg + self.copy_logit[k] * F.one_hot(prev_class[..., k], n)
                          for k, (lg, n) in enumerate(zip(logits, self.class_sizes, strict=True))]
        steps = None
        if self.stepped:
            s = self.stepped
            steps = out[..., n_reg + n_cls:].unflatten(-1, (len(s), c.step_classes))
            velocity = self.step_targets((prev - before)[..., s].float())  # (..., S)
            bonus = F.one_hot(velocity, c.step_classes)  # (..., S, 2D+2)
            steps = steps + self.step_logit[:, None] * bonus  # (..., S, 2D+2)
        return Heads(reg, logits, steps, prev.float())

    def step_targets(self, change: Tensor, jump: Tensor | None = None) -> Tensor:
        """Raw step changes (..., S) of the stepped variables -> their classes (..., S): 2D+1
        where `jump` is set (default: where the change is beyond -D..D), else D + the change
        held to -D..D."""
        d = self.config.delta_classes
        k = change.round().long()
        if jump is None:
            jump = k.abs() > d
        return torch.where(jump, 2 * d + 1, k.clamp(-d, d) + d)

    def _decode(self, heads: Heads, generator: torch.Generator | None = None) -> Tensor:
        """Raw-scale metadata (..., M): argmax classes (with a `generator`: classes drawn from
        the predicted distribution), inverse-normalised regressions, and for the stepped
        variables m_{t-1} moved by their argmax step class (the regression where it is a
        jump; a `generator` does not draw these)."""
        reg, logits = heads.reg, heads.logits
        out = torch.empty(*reg.shape[:-1], len(self.config.metadata_names), device=reg.device)
        r = self.regressed
        out[..., r] = reg * self.std[r] + self.mean[r]
        if heads.steps is not None:
            s, d = self.stepped, self.config.delta_classes
            k = heads.steps.argmax(-1)  # (..., S)
            moved = heads.last[..., s] + (k - d).float()
            out[..., s] = torch.where(k <= 2 * d, moved, out[..., s])
        for i, lg in zip(self.classified, logits, strict=True):
            if generator is None:
                out[..., i] = lg.argmax(-1).float()
            else:  # lg (..., n_k) -> one draw per row
                p = lg.float().softmax(-1).reshape(-1, lg.shape[-1])
                draw = torch.multinomial(p, 1, generator=generator)
                out[..., i] = draw.reshape(lg.shape[:-1]).float()
        # whole-number variables (`integer`, else the categorical ones) come out rounded
        return torch.where(self.rounded, out.round(), out)

    def class_targets(self, metadata: Tensor) -> Tensor:
        """Raw (..., M) -> class indices (..., len(classified)), clamped to the class range."""
        sizes = torch.tensor(self.class_sizes, device=metadata.device)
        return metadata[..., self.classified].round().long().clamp(min=0).minimum(sizes - 1)

    # -- training --------------------------------------------------------------------------

    def forward(self, batch: dict[str, Tensor], rollout: int = 1, dream: Dream | None = None,
                step_limits: Tensor | None = None, change_weight: float = 1.0,
                event_weight: float = 1.0, reg_loss: str = "mse", sync_tol: float = 0.1
                ) -> tuple[Tensor, dict[str, float]]:
        """Loss over every step of a window and logs (per-variable errors at the last step).

        batch: "metadata" (B, L+1+R, M) raw m_{t-L-1} .. m_{t+R-1}; "latents" (B, L+R-1, C, h,
        w) Z_{t-L} .. Z_{t+R-2}; "actions" (B, L+R-1) a_{t-L} .. a_{t+R-2}, with R = `rollout`
        (R = 1 is one window: m_t is the last target). See the module docstring.

        With R > 1 the model is also trained in closed loop, as the dream runs it: call r
        (r = 0 .. R-1) predicts m_{t+r} from the window that ends at t+r-1, whose newest r
        metadata are the model's own earlier predictions (decoded as at inference: argmax
        classes, rounded whole numbers; no gradient through them), against the recorded
        values. With `dream`, the newest latents are dreamt too: Z_{t+r-1} (r >= 1) is
        `dream(latents, actions, metadata)` from the latents so far (B, n, C, h, w), the
        actions after each of them (B, n) and [m_{t+r-2}, m_{t+r-1}] (B, 2, M) (the denoiser,
        as `WorldModel.step` runs it), instead of the recorded Z_{t+r-1}. `step_limits` (2, M):
        the game's bounds on a variable's change in one step (`GameSpec.step_limits`), which
        the fed-back predictions are held to as the dream holds them. The loss is the mean
        over the R calls; logs describe the last one.

        `change_weight` weighs the cross-entropy of a classified variable at the steps where
        its recorded value changes (m_t != m_{t-1}: a point scored, a life lost) that many
        times more than at the others, so that rare events are not drowned by the copies.
        `event_weight` does the same for a regressed variable at its events, the steps where
        m_t departs from the constant-velocity guess 2 m_{t-1} - m_{t-2} (`EVENT_TOL`): a ball
        bouncing off a paddle, which an average over bounces and misses would blur. `reg_loss`
        "l1" regresses the median instead of the mean ("mse"), which keeps to the likelier
        outcome where an outcome is in doubt. In closed loop every variable learns the recorded
        step from the value it was fed, and only where the fed regressed variables are within
        `sync_tol` standard deviations of the recording (`_loss`).
        """
        if reg_loss not in REG_LOSSES:
            raise ValueError(f"reg_loss must be one of {REG_LOSSES}, got {reg_loss!r}")
        metadata = batch["metadata"].float()  # (B, L+1+R, M)
        latents, actions = batch["latents"], batch["actions"]
        length = actions.shape[1] - rollout + 1
        if length < 1 or metadata.shape[1] != actions.shape[1] + 2:
            raise ValueError(f"a rollout of {rollout} calls needs at least {rollout} actions and "
                             f"2 metadata frames more than actions, got {actions.shape[1]} "
                             f"actions and {metadata.shape[1]} metadata")
        if dream is not None:  # only the window's recorded latents are read
            latents = latents[:, :length]
        features = self.encode_latents(latents)  # (B, L or L+R-1, D)
        inputs = metadata[:, : length + 1]  # (B, L+1, M): the first call's, all recorded
        losses = []
        for r in range(rollout):
            if dream is not None and r > 0:  # Z_{t+r-1} from the dream
                with torch.no_grad():
                    z = dream(latents, actions[:, : latents.shape[1]], inputs[:, -2:])
                latents = torch.cat([latents, z[:, None].to(latents.dtype)], 1)
                features = torch.cat([features, self.encode_latents(z[:, None])], 1)
            target = metadata[:, r + 2 : r + 2 + length]  # (B, L, M) m_{t-L+1+r} .. m_{t+r}
            window = inputs[:, -(length + 1):]  # (B, L+1, M)
            h = self._sequence(window, features[:, r:r + length], actions[:, r:r + length])
            heads = self._heads(h, window[:, 1:], window[:, :-1])  # at every step of the window
            loss, per_var = self._loss(heads, target, metadata[:, r : r + 1 + length],
                                       change_weight, event_weight, reg_loss, sync_tol)
            losses.append(loss)
            with torch.no_grad():  # m_{t+r} as the dream would feed it back
                pred = self._decode(heads.last_step())
                if step_limits is not None:  # as WorldModel.predict_metadata does
                    pred = hold_to_limits(pred.to(inputs.dtype), inputs[:, -1], step_limits)
                inputs = torch.cat([inputs, pred[:, None]], 1)
        loss = torch.stack(losses).mean()
        logs = self._logs(loss, per_var, pred, target[:, -1])
        if rollout > 1:  # how much of the last call's window the classes learnt from
            fed = inputs[:, -(length + 1):-1]  # (B, L, M): the m_{t-1} each step was fed
            logs["in_sync"] = float(self.in_sync(fed, metadata[:, -(length + 1):-1],
                                                 sync_tol).float().mean().item())
        return loss, logs

    def _loss(self, heads: Heads, target: Tensor, history: Tensor | None = None,
              change_weight: float = 1.0, event_weight: float = 1.0, reg_loss: str = "mse",
              sync_tol: float = 0.1) -> tuple[Tensor, dict[int, Tensor]]:
        """Mean per-variable loss (MSE, or L1 with `reg_loss` "l1", of normalised regressions;
        cross-entropy of classes) over every step, and each variable's. heads at (B, L),
        target (B, L, M) raw; history (B, L+1, M) raw, the two recorded values before each
        target (history[:, 1:] is m_{t-1}, history[:, :-1] m_{t-2}; without it, the fed
        m_{t-1} is taken as recorded). Each loss is a weighted mean over the steps: with
        `change_weight` != 1 a class's steps where the recording changes weigh
        `change_weight`, the others 1; with `event_weight` != 1 so do a regression's events
        (see `forward`).

        What is taught is the recorded step, from the m_{t-1} the model was fed: a stepped
        variable's class is the recorded change m_t - m_{t-1} (a jump where the recording
        jumps, where its regression is then taught the recorded value), a classified
        variable's class is the fed value moved by the recorded change. In open loop fed and
        recorded are one. In closed loop the fed values drift from the recording, and a step
        counts only where every fed regressed variable is within `sync_tol` standard
        deviations of it (`in_sync`): where the dream has gone its own way, the recording's
        next step is not its next step (a point scored there, a ball's bounce), and a target
        that pulls back towards the recording teaches moves the game never makes (a ball
        crossing the screen in a few steps, a point paid at any state)."""
        per_var: dict[int, Tensor] = {}
        c, r = self.config, self.regressed
        recorded = heads.last if history is None else history[:, 1:]  # (B, L, M) m_{t-1}
        sync = self.in_sync(heads.last, recorded, sync_tol).float()  # (B, L)
        target_norm = self.normalise(target)[..., r]  # (B, L, R)
        diff = heads.reg - target_norm
        err = diff.abs() if reg_loss == "l1" else diff.pow(2)  # (B, L, R)
        w_reg = sync[..., None].expand_as(err)  # (B, L, R)
        if event_weight != 1.0 and history is not None and r:
            event = velocity_events(target[..., r], recorded[..., r], history[:, :-1, r])
            w_reg = w_reg * (1.0 + (event_weight - 1.0) * event.float())  # (B, L, R)
        mean_err = masked_mean(err, w_reg, (0, 1))  # (R,)
        for j, i in enumerate(r):
            per_var[i] = mean_err[j]
        if heads.steps is not None:
            s = self.stepped
            classes = self.step_targets(target[..., s] - recorded[..., s])  # (B, L, S)
            ce = F.cross_entropy(heads.steps.flatten(0, -2), classes.flatten(),
                                 reduction="none").reshape(classes.shape)  # (B, L, S)
            jump = (classes == c.step_classes - 1).float() * sync[..., None]  # (B, L, S)
            for j, i in enumerate(s):
                col = r.index(i)
                per_var[i] = (masked_mean(err[..., col], jump[..., j], (0, 1))
                              + masked_mean(ce[..., j], w_reg[..., col], (0, 1)))
        if self.classified:
            fed = self.class_targets(heads.last)  # (B, L, K)
            change = self.class_targets(target) - self.class_targets(recorded)  # (B, L, K)
            sizes = torch.tensor(self.class_sizes, device=fed.device)
            classes = (fed + change).clamp(min=0).minimum(sizes - 1)  # (B, L, K)
            w_cls = sync[..., None] * (1.0 + (change_weight - 1.0) * (change != 0).float())
            for k, (i, lg) in enumerate(zip(self.classified, heads.logits, strict=True)):
                ce = F.cross_entropy(lg.flatten(0, 1), classes[..., k].flatten(),
                                     reduction="none")  # (B*L,)
                per_var[i] = masked_mean(ce, w_cls[..., k].flatten(), (0,))
        loss = torch.stack([per_var[i] for i in range(len(self.config.metadata_names))]).mean()
        return loss, per_var

    def in_sync(self, fed: Tensor, recorded: Tensor, tol: float) -> Tensor:
        """Where the fed m_{t-1} (..., M) keeps to the recorded one: every regressed variable
        within `tol` standard deviations, raw scale -> bool (...)."""
        r = self.regressed
        if not r:
            return torch.ones(fed.shape[:-1], dtype=torch.bool, device=fed.device)
        return ((fed[..., r] - recorded[..., r]).abs() <= tol * self.std[r]).all(-1)

    @torch.no_grad()
    def _logs(self, loss: Tensor, per_var: dict[int, Tensor], pred: Tensor, target: Tensor
              ) -> dict[str, float]:
        """Loss, per-variable losses and raw-scale errors of pred (B, M) against target (B, M)."""
        err = (pred - target).abs()  # (B, M) raw scale
        logs = {"loss": float(loss.item())}
        for i, name in enumerate(self.config.metadata_names):
            logs[f"loss/{name}"] = float(per_var[i].item())
            logs[f"mae/{name}"] = float(err[:, i].mean().item())
            if self.config.kinds[i] == "categorical":
                logs[f"acc/{name}"] = float((err[:, i] < 0.5).float().mean().item())
        return logs

    # -- inference -------------------------------------------------------------------------

    @torch.no_grad()
    def predict(self, metadata: Tensor, latents: Tensor, actions: Tensor,
                generator: torch.Generator | None = None) -> Tensor:
        """m_t on the raw scale, (B, M), from the last L <= W steps.

        metadata (B, L+1, M) raw m_{t-L-1} .. m_{t-1}: metadata[:, -1] is m_{t-1},
            metadata[:, -2] is m_{t-2};
        latents (B, L, C, h, w) Z_{t-L} .. Z_{t-1}: latents[:, -1] is Z_{t-1};
        actions (B, L) a_{t-L} .. a_{t-1}: actions[:, -1] is a_{t-1}.
        Categorical variables come out as whole numbers (argmax class, or a rounded
        regression when they are not classified), and so do those marked `integer`. With a
        `generator` (on the model's device) each classified variable's class is drawn from its
        predicted distribution instead of taken as the most likely one: a point that g_phi
        gives probability 0.4 is scored in 40% of the dreams, where argmax never scores it.
        """
        return self._decode(self._last_heads(metadata, latents, actions), generator)  # (B, M)

    @torch.no_grad()
    def predict_expected(self, metadata: Tensor, latents: Tensor, actions: Tensor
                         ) -> tuple[Tensor, Tensor]:
        """(`predict`'s m_t, its expectation), (B, M) each: the expectation holds each
        classified variable's mean class value under the predicted distribution (a score one
        point up with probability 0.6 gives score + 0.6), the other variables as `predict`."""
        heads = self._last_heads(metadata, latents, actions)
        out = self._decode(heads)  # (B, M)
        expected = out.clone()
        for i, lg in zip(self.classified, heads.logits, strict=True):  # lg (B, n_k)
            values = torch.arange(lg.shape[-1], device=lg.device, dtype=torch.float32)
            expected[:, i] = lg.float().softmax(-1) @ values
        return out, expected

    def _last_heads(self, metadata: Tensor, latents: Tensor, actions: Tensor) -> Heads:
        """The heads at the window's last step, (B, ...) (inputs as in `predict`)."""
        device = self.mean.device
        metadata = metadata.to(device)  # (B, L+1, M)
        h = self._sequence(metadata, self.encode_latents(latents.to(device)), actions.to(device))
        return self._heads(h[:, -1], metadata[:, -1], metadata[:, -2])


# -- data --------------------------------------------------------------------------------


def cache_batch(cache: LatentCache, last: np.ndarray, window: int, rollout: int = 1,
                dreamt: bool = False, latents: bool = True) -> dict[str, np.ndarray]:
    """The training batch of windows whose last input frame is `last` (B,) in a LatentCache.

    Frame i = last: metadata m_{i-W} .. m_{i+R} (B, W+1+R, M) float32 (m_{i+1} is the first
    target m_t), latents Z_{i-W+1} .. Z_{i+R-1} (B, W+R-1, C, h, w) float16, actions
    a_{i-W+1} .. a_{i+R-1} (B, W+R-1), for R = `rollout` calls (`MetadataPredictor.forward`).
    Valid `last` values: `cache.window_starts(split, window + 1, rollout)`, which keeps every
    frame inside one episode. Only the frames the model reads are gathered (the latents stay
    fp16): with `dreamt` (the unrolled steps' latents come from a dream), the window's W;
    with `latents` False (a g_phi that reads no frames) none are read: empty, (B, n, 0, 0, 0).
    """
    last = np.asarray(last, np.int64)
    b, n = len(last), window + rollout - 1
    steps = last[:, None] + np.arange(-window + 1, rollout)[None]  # (B, W+R-1)
    meta_idx = last[:, None] + np.arange(-window, rollout + 1)[None]  # (B, W+1+R)
    read = steps[:, :window] if dreamt else steps  # (B, W) or (B, W+R-1)
    lat = np.asarray(cache.latents[read.reshape(-1)]).reshape(b, read.shape[1],
                                                               *cache.latent_shape) \
        if latents else np.zeros((*read.shape, 0, 0, 0), np.float16)
    return {
        "metadata": np.asarray(cache.metadata[meta_idx.reshape(-1)], np.float32).reshape(
            b, window + 1 + rollout, -1),
        "latents": lat,
        "actions": np.asarray(cache.actions[steps.reshape(-1)], np.int64).reshape(b, n),
    }


def to_tensors(batch: dict[str, np.ndarray], device: torch.device | str = "cpu"
               ) -> dict[str, Tensor]:
    """numpy batch -> tensors on `device` (latents become float32 there)."""
    out = {k: torch.from_numpy(np.ascontiguousarray(v)).to(device, non_blocking=True)
           for k, v in batch.items()}
    out["latents"] = out["latents"].float()
    return out


@dataclass
class MetadataStats:
    """What a config needs to know of the data: normalisation and class counts."""

    mean: list[float]
    std: list[float]
    num_classes: list[int]
    integer: list[bool]
    notes: list[str] = field(default_factory=list)


def metadata_stats(cache: LatentCache, kinds: tuple[str, ...],
                   game_classes: Sequence[int] | None = None) -> MetadataStats:
    """Mean/std (from info.json when it has them, else the train split), class counts and
    which variables are whole numbers everywhere in the cache.

    A categorical variable gets max + 1 classes (max over the whole cache, so every recorded
    value has a class), or `game_classes[i]` when that is more (the values the game can take,
    `GameSpec.class_counts`: a score that random play never reached still gets its class), if
    its values are whole numbers in 0 .. 255; otherwise it is regressed (num_classes 0) and a
    note says why.
    """
    info = cache.info
    rows = np.concatenate([np.arange(s, s + n) for s, n, t in cache.episodes if t == 0]
                          or [np.zeros(0, np.int64)])
    if len(rows) == 0:
        raise ValueError(f"{cache.root}: the train split is empty")
    train = np.asarray(cache.metadata[rows], np.float64)  # (N, M)
    if "metadata_mean" in info and "metadata_std" in info:
        mean = [float(v) for v in info["metadata_mean"]]
        std = [float(v) for v in info["metadata_std"]]
    else:
        mean, std = train.mean(0).tolist(), train.std(0).tolist()
    std = [s if s > 1e-6 else 1.0 for s in std]  # constant variables: leave unscaled
    allm = np.asarray(cache.metadata, np.float64)
    num_classes, notes = [], []
    names = info.get("metadata_names") or [f"m{i}" for i in range(len(kinds))]
    for i, kind in enumerate(kinds):
        if kind != "categorical":
            num_classes.append(0)
            continue
        v = allm[:, i]
        if v.min() < 0 or not np.all(v == np.round(v)) or v.max() >= MAX_CLASSES:
            notes.append(f"{names[i]}: values not whole numbers in 0..{MAX_CLASSES - 1} "
                         f"(min {v.min():g}, max {v.max():g}); regressed instead of classified")
            num_classes.append(0)
        else:
            game = int(game_classes[i]) if game_classes is not None else 0
            num_classes.append(max(2, int(v.max()) + 1, min(game, MAX_CLASSES)))
    integer = [bool(np.all(allm[:, i] == np.round(allm[:, i]))) for i in range(len(kinds))]
    return MetadataStats(mean=mean, std=std, num_classes=num_classes, integer=integer,
                         notes=notes)
