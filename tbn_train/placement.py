"""Where LoRA adapters go on any mlx-lm family: the paper's seven roles mapped onto a block's layers.

Discovery is mlx-lm's (``mlx_lm.tuner.utils.linear_to_lora_layers``): every ``nn.Linear``,
``nn.QuantizedLinear``, ``SwitchLinear`` and ``QuantizedSwitchLinear`` inside a transformer block
can carry LoRA. Each is given the roles its name plays among q, k, v, o, gate, up, down (§9.3.11):

* separate projections (llama, qwen3, gemma3, mistral, …): ``q_proj`` → q, …, ``down_proj`` → down;
* fused projections (phi3): ``qkv_proj`` → q, k, v and ``gate_up_proj`` → gate, up — the fused
  layer is adapted when any of its roles is asked for;
* MLA attention (deepseek_v3, glm4_moe_lite, mistral4): ``q_a_proj`` and ``q_b_proj`` → q, the
  latent ``kv_a_proj_with_mqa`` (and ``kv_b_proj`` where a version has it) → k, v, ``o_proj`` → o;
* mixture-of-experts: the experts' ``switch_mlp.*`` / ``experts.*`` switch layers → gate, up,
  down (one factor pair per expert), shared experts and dense layers as plain linears. The router
  (a linear named ``gate`` or ``router``) is never adapted: routing stays the base model's.

A role some adapted block cannot carry, or a hand-named path (``--lora-keys``) that is not an
adaptable layer there, is refused up front with the block's layer types in the message.
"""

from __future__ import annotations

from dataclasses import dataclass

from mlx import nn
from mlx_lm.models.switch_layers import QuantizedSwitchLinear, SwitchLinear

PAPER_MODULES = ("q", "k", "v", "o", "gate", "up", "down")  # §9.3.11: seven modules per layer
ATTENTION_ROLES = frozenset({"q", "k", "v", "o"})
ADAPTABLE = (nn.Linear, nn.QuantizedLinear, SwitchLinear, QuantizedSwitchLinear)  # mlx-lm's LoRA types
SWITCH = (SwitchLinear, QuantizedSwitchLinear)
# A layer's last name → the roles it plays.
ROLES_BY_NAME: dict[str, tuple[str, ...]] = {
    "q_proj": ("q",), "q_a_proj": ("q",), "q_b_proj": ("q",),
    "k_proj": ("k",), "v_proj": ("v",), "o_proj": ("o",),
    "qkv_proj": ("q", "k", "v"), "kv_a_proj_with_mqa": ("k", "v"), "kv_b_proj": ("k", "v"),
    "gate_proj": ("gate",), "up_proj": ("up",), "down_proj": ("down",), "gate_up_proj": ("gate", "up"),
}
ROUTER_NAMES = frozenset({"gate", "router"})  # MoE routers: plain linears that pick experts, kept frozen
KEYS_FLAG = "--lora-keys"


class PlacementError(ValueError):
    """The requested adapter cannot be placed on this model (one line: what, where, and the fix)."""


@dataclass(frozen=True)
class Site:
    """One adaptable layer inside a block: its path, roles, type and dimensions (experts 0 = plain)."""

    path: str
    roles: tuple[str, ...]
    kind: str
    in_dims: int
    out_dims: int
    experts: int = 0


def _site(path: str, layer: nn.Module) -> Site:
    roles = ROLES_BY_NAME.get(path.rsplit(".", 1)[-1], ())
    kind = type(layer).__name__
    if isinstance(layer, SWITCH):
        return Site(path, roles, kind, layer.input_dims, layer.output_dims, layer.num_experts)
    out_dims, in_dims = layer.weight.shape
    if isinstance(layer, nn.QuantizedLinear):
        in_dims = in_dims * 32 // layer.bits
    return Site(path, roles, kind, in_dims, out_dims)


def is_router(path: str, layer: nn.Module) -> bool:
    return path.rsplit(".", 1)[-1] in ROUTER_NAMES and not isinstance(layer, SWITCH)


def block_layers(block: nn.Module) -> dict[str, nn.Module]:
    """Every adaptable base layer in ``block`` by path (an adapter wrapper counts as the layer it wraps)."""
    from tbn_train.lora import MultiLoRA  # here: lora imports this module

    found, wrapped = {}, []
    for path, mod in block.named_modules():
        if isinstance(mod, MultiLoRA):
            found[path] = mod.linear
            wrapped.append(path + ".")
    for path, mod in block.named_modules():
        if isinstance(mod, ADAPTABLE) and path not in found and not any(path.startswith(w) for w in wrapped):
            found[path] = mod
    return dict(sorted(found.items()))


def describe_block(block: nn.Module) -> str:
    """``Block: path Type, …`` — what a refusal shows so the user can pick ``--lora-keys``."""
    parts = [f"{p} {type(m).__name__}" for p, m in block_layers(block).items()]
    return f"{type(block).__name__}: {', '.join(parts) or 'no Linear/QuantizedLinear/SwitchLinear layers'}"


def placement(model: nn.Module, layers: list[int], roles: tuple[str, ...], keys: tuple[str, ...] | None = None
              ) -> dict[tuple[int, str], Site]:
    """The sites of an adapter on ``layers``: by role, or exactly the block paths in ``keys``."""
    sites = {}
    for i in layers:
        block = model.layers[i]
        found = block_layers(block)
        if keys is not None:
            for key in keys:
                if key not in found:
                    raise PlacementError(f"{KEYS_FLAG} {key}: no adaptable layer at that path in layer {i} ({describe_block(block)})")
                if is_router(key, found[key]):
                    raise PlacementError(f"{KEYS_FLAG} {key} is the mixture-of-experts router, which stays frozen; "
                                         f"name expert or attention layers instead ({describe_block(block)})")
                sites[(i, key)] = _site(key, found[key])
            continue
        here = {p: _site(p, m) for p, m in found.items() if not is_router(p, m)}
        chosen = {p: s for p, s in here.items() if set(s.roles) & set(roles)}
        missing = [r for r in roles if not any(r in s.roles for s in chosen.values())]
        if missing:
            raise PlacementError(f"cannot place LoRA roles {missing} in layer {i} ({describe_block(block)}); "
                                 f"name the layers to adapt by hand with {KEYS_FLAG} PATH [PATH ...]")
        sites |= {(i, p): s for p, s in chosen.items()}
    return sites
