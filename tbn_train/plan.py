"""``tbn-train plan``: where the adapters go on a model and how much memory a self-play run needs, before any run.

Nothing is trained and no weight is read: the model is built lazily by mlx-lm from its directory
(``config.json`` alone is enough), so array shapes and dtypes are known without loading 30 GB.

Peak memory of the three roles on one base (therapist trainable, client + judge one frozen slot,
§9.3.12) = base weights + both adapter slots + the therapist's gradient and Adam moments +
the larger of the two phases of a turn:

* generation: the KV cache of K candidates of prompt + new tokens, plus the prompt's attention
  matrix during prefill;
* the GRPO step (K sequences of prompt + new tokens, forward + backward from the top of the
  model down to the first adapted layer): one attention matrix per head per backward layer, the
  block activations, and the float32 logits.

The copy counts are named constants fitted to ``mx.get_peak_memory()`` on a tiny llama with MLX's
CPU backend (``tests/train/test_plan.py`` holds the estimate to 25 % on the other families, MoE,
MLA, sliding-window, fused and quantized, which it was not fitted on). A backend with a fused attention backward needs less, so there it is an upper bound.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import mlx.core as mx
from mlx import nn
from mlx.utils import tree_flatten

from tbn_train.config import TrainConfig
from tbn_train.lora import LoRASpec
from tbn_train.model import resolve_model
from tbn_train.placement import PAPER_MODULES, Site, placement

PROMPT_TOKENS = 2048  # choice: a therapist prompt late in a session (history + client turn), the size plan assumes
ADAPTER_SLOTS = 2  # therapist + the frozen client/judge slot (§9.3.12); π_ref reuses the frozen slot
ADAM_MOMENTS = 2  # Adam keeps m and v per trainable parameter
FACTOR_BYTES = 4  # LoRA factors, their gradients and Adam moments are float32
LOGIT_BYTES = 4  # log-softmax over the vocabulary runs in float32
# Copies alive at the GRPO step's peak, least-squares fitted to mx.get_peak_memory() of a 6-layer llama with
# vocabularies 512–32768, hidden 64–256 and prompts 128–512 (every fitted point within 2 %):
ATTENTION_COPIES = 1.0  # attention matrices (B·H·T²) per backward layer …
ATTENTION_EXTRA = 2  # … plus two more (the step's forward below the adapters, the mask)
ACTIVATION_COPIES = 6.0  # per token per backward layer, in units of (hidden + active MLP width)
LOGIT_COPIES = 3.0  # per token, in units of the vocabulary (logits, log-softmax, its gradient)
PREFILL_COPIES = 2.0  # attention matrices alive while the K prompts are prefilled
KV_STEP = 256  # mlx-lm's KVCache grows in steps of 256 positions


@dataclass(frozen=True)
class Plan:
    """What ``tbn-train plan`` reports (all sizes in bytes)."""

    family: str
    num_layers: int
    adapted_layers: list[int]
    sites: dict[tuple[int, str], Site]
    ranks: dict[tuple[int, str], int]
    params_by_role: dict[str, int]
    memory: dict[str, int] = field(default_factory=dict)
    settings: dict[str, int] = field(default_factory=dict)

    @property
    def trainable(self) -> int:
        return sum(self.params_by_role.values())

    @property
    def peak(self) -> int:
        m = self.memory
        return m["weights"] + m["adapters"] + m["optimizer"] + max(m["generation"], m["grpo_step"])


def site_params(site: Site, rank: int) -> int:
    """Trainable numbers of one adapter on one layer: rank · (in + out), per expert on switch layers."""
    return rank * (site.in_dims + site.out_dims) * max(site.experts, 1)


def load_for_plan(name: str | Path) -> tuple[nn.Module, dict]:
    """The model built lazily by mlx-lm (weights never read; a directory with only config.json works)."""
    from mlx_lm.utils import load_model

    path = resolve_model(name)
    model, config = load_model(path, lazy=True, strict=False)
    if not list(path.glob("model*.safetensors")):  # config only: shape it as the checkpoint would be
        dtype = getattr(mx, str(config.get("torch_dtype") or config.get("dtype") or "bfloat16"), mx.bfloat16)
        model.set_dtype(dtype)
        if (q := config.get("quantization")) is not None:  # as mlx_lm.convert quantizes (lazily: nothing computed)
            from mlx_lm.utils import quantize_model

            with contextlib.redirect_stdout(io.StringIO()):  # keep its "[INFO] Quantized …" line out of the report
                model, config = quantize_model(model, config, q["group_size"], q["bits"], mode=q.get("mode", "affine"))
    return model, config


def activation_dtype_bytes(model: nn.Module) -> int:
    """Bytes of one activation: the dtype of the floating parameters (embeddings, norms, quantization scales)."""
    sizes = [v.dtype.size for _, v in tree_flatten(model.parameters()) if mx.issubdtype(v.dtype, mx.floating)]
    return max(set(sizes), key=sizes.count)


def kv_bytes_per_token(model: nn.Module, tokens: int) -> int:
    """KV-cache bytes of one sequence of ``tokens`` positions over all layers (from a lazily built one-token pass)."""
    from mlx_lm.models.cache import RotatingKVCache, make_prompt_cache

    cache = make_prompt_cache(model)
    model(mx.array([[0]]), cache=cache)  # builds the graph only: shapes, no weights read
    total = 0
    for c in cache:
        keys, values = getattr(c, "keys", None), getattr(c, "values", None)
        if not isinstance(keys, mx.array) or not isinstance(values, mx.array):
            continue  # not an attention cache (state-space layers hold a fixed-size state)
        per_position = (keys.nbytes + values.nbytes) // keys.shape[2]
        held = min(tokens, c.max_size) if isinstance(c, RotatingKVCache) else math.ceil(tokens / KV_STEP) * KV_STEP
        total += per_position * held
    return total


def make_plan(name: str | Path, train: TrainConfig, prompt_tokens: int = PROMPT_TOKENS) -> Plan:
    """Placement, trainable parameters by role, and the peak-memory estimate of a self-play run."""
    model, config = load_for_plan(name)
    spec: LoRASpec = train.lora_spec()
    sites = spec.sites(model)
    ranks = {key: spec.rank(site.roles) for key, site in sites.items()}
    by_role: dict[str, int] = {}
    for key, site in sites.items():
        label = "+".join(site.roles) or site.path
        by_role[label] = by_role.get(label, 0) + site_params(site, ranks[key])
    order = {r: i for i, r in enumerate(PAPER_MODULES)}
    by_role = dict(sorted(by_role.items(), key=lambda kv: (order.get(kv[0].split("+")[0], len(order)), kv[0])))
    trainable = sum(by_role.values())
    num_layers = len(model.layers)
    layers = spec.resolve_layers(num_layers)
    k, new = len(train.grpo_temperatures), train.max_new_tokens
    seq = prompt_tokens + new
    d = activation_dtype_bytes(model)
    heads = config.get("num_attention_heads") or config.get("n_head") or 1
    vocab = config["vocab_size"]
    top_k = config.get("num_experts_per_tok", 1)
    widths = 0  # Σ over backward layers of (hidden + active MLP width)
    for i in range(layers[0], num_layers):
        downs = [s for p, s in _block_sites(model, i).items() if "down" in s.roles]
        hidden = next(iter(downs)).out_dims if downs else config.get("hidden_size", 0)
        routed = any(s.experts for s in downs)  # experts see each token top_k times: a copy of its input per expert
        widths += hidden * (1 + (top_k if routed else 0)) + sum(s.in_dims * (top_k if s.experts else 1) for s in downs)
    backward = num_layers - layers[0]
    grpo = (k * heads * seq * seq * d * (ATTENTION_COPIES * backward + ATTENTION_EXTRA)
            + k * seq * ACTIVATION_COPIES * widths * d + k * seq * LOGIT_COPIES * vocab * LOGIT_BYTES)
    generation = k * kv_bytes_per_token(model, seq) + k * heads * prompt_tokens * prompt_tokens * d * PREFILL_COPIES
    weights = sum(v.nbytes for _, v in tree_flatten(model.parameters()))
    memory = {
        "weights": weights,
        "adapters": ADAPTER_SLOTS * trainable * FACTOR_BYTES,
        "optimizer": (1 + ADAM_MOMENTS) * trainable * FACTOR_BYTES,  # gradient + Adam m, v
        "generation": int(generation),
        "grpo_step": int(grpo),
    }
    return Plan(config.get("model_type", type(model).__name__), num_layers, layers, sites, ranks, by_role, memory,
                {"prompt_tokens": prompt_tokens, "new_tokens": new, "candidates": k})


def _block_sites(model: nn.Module, layer: int) -> dict[tuple[int, str], Site]:
    try:
        return {p: s for (_, p), s in placement(model, [layer], PAPER_MODULES).items()}
    except ValueError:  # a block the roles do not fit (e.g. gpt2): count its hidden width only
        return {}


def gib(n: float) -> str:
    return f"{n / 2**30:.2f} GiB" if n >= 2**27 else f"{n / 2**20:.1f} MiB"


def format_plan(plan: Plan) -> str:
    """The human-readable report."""
    paths: dict[str, Site] = {}
    for (_, path), site in sorted(plan.sites.items()):
        paths.setdefault(path, site)
    rows = [f"family        {plan.family}, {plan.num_layers} layers",
            f"adapted       layers {plan.adapted_layers[0]}–{plan.adapted_layers[-1]} ({len(plan.adapted_layers)} of {plan.num_layers})",
            "modules       (path: roles, layer type, rank, per-layer params)"]
    ranks = {path: rank for (_, path), rank in plan.ranks.items()}
    for path, site in paths.items():
        experts = f", {site.experts} experts" if site.experts else ""
        rows.append(f"  {path}: {'+'.join(site.roles) or '-'}, {site.kind}{experts}, r{ranks[path]}, "
                    f"{site_params(site, ranks[path]):,}")
    rows.append("trainable     " + ", ".join(f"{r} {n:,}" for r, n in plan.params_by_role.items()) + f" (total {plan.trainable:,})")
    s, m = plan.settings, plan.memory
    rows += [(f"memory        therapist + client + judge on one base; prompt {s['prompt_tokens']} + {s['new_tokens']} new tokens,"
              f" K = {s['candidates']}"),
             f"  weights {gib(m['weights'])}, adapters ×{ADAPTER_SLOTS} {gib(m['adapters'])}, gradient + Adam {gib(m['optimizer'])}",
             f"  generation (KV cache + prefill) {gib(m['generation'])}, GRPO step activations {gib(m['grpo_step'])}",
             f"  estimated peak {gib(plan.peak)}"]
    return "\n".join(rows)


def plan_json(plan: Plan) -> str:
    """The report as JSON (sizes in bytes)."""
    return json.dumps({"family": plan.family, "num_layers": plan.num_layers, "adapted_layers": plan.adapted_layers,
                       "modules": sorted({p for _, p in plan.sites}), "params_by_role": plan.params_by_role,
                       "trainable": plan.trainable, "memory": plan.memory, "peak": plan.peak, "settings": plan.settings},
                      indent=2)
