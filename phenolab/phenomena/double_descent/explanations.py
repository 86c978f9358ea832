"""What explains a double-descent curve at one capacity, read from the runs' final checkpoints:
the bias–variance split over seeds (`phenolab.analysis.ensemble`) and, for least-squares models,
effective parameters (`phenolab.analysis.smoothers`); for linear regression the exact terms given
each seed's design and Nakkiran et al.'s theory."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from phenolab.analysis.ensemble import ce_decomposition, mse_decomposition
from phenolab.analysis.smoothers import effective_parameters
from phenolab.catalog import Catalog, run_id_for
from phenolab.engine.evaluate import outputs as model_outputs
from phenolab.phenomena.double_descent.linear_theory import linear_bias_variance, min_norm_excess_risk
from phenolab.settings import Setting

P_EFF_EVAL_POINTS = 2000  # test inputs on which effective parameters are counted


def explain(catalog: Catalog, setting: Setting, seeds: list[int]) -> dict[str, Any]:
    """Bias/variance (and effective parameters for least squares) at one capacity; {} when the
    runs kept no final checkpoint (setting checkpoints='none')."""
    if setting.task.name == "linear_regression":
        return _linear_terms(setting, seeds)
    if setting.checkpoints == "none":
        return {}
    from phenolab.models import build_model, model_class
    from phenolab.tasks import build_task

    dtype = torch.float64 if setting.dtype == "float64" else torch.float32
    data = build_task(setting.task, seeds, model_class(setting.model.name).input_kind, dtype)
    if not all(torch.equal(data.x_test[0], data.x_test[k]) for k in range(1, len(seeds))):
        return {}  # seeds do not share a test set: no ensemble over them
    model = build_model(setting.model, data.input_dim, data.out_dim, data.seq_len)
    ckpts = [catalog.load_checkpoint(run_id_for(setting.id, s)) for s in seeds]
    params = {n: torch.stack([c[n] for c in ckpts]).to(dtype) for n in ckpts[0]}
    with torch.no_grad():
        outputs = model_outputs(model, params, data.x_test, setting.eval.batch_size)
    y = data.y_test[0]
    if setting.loss == "ce":
        out: dict[str, Any] = ce_decomposition(outputs, y)
    else:
        targets = torch.nn.functional.one_hot(y, data.num_classes) if data.num_classes else y
        out = mse_decomposition(outputs, targets, y if data.num_classes else None)
    if setting.optim.name == "lstsq":
        out.update(_effective_parameters(model, params, data, setting.optim.ridge))
    return out


def _effective_parameters(model: Any, params: dict[str, torch.Tensor], data: Any, ridge: float) -> dict[str, float]:
    with torch.no_grad():
        phi_train = model.features(params, data.x_train)
        phi_eval = model.features(params, data.x_test[:, :P_EFF_EVAL_POINTS])
    test, train = zip(*(effective_parameters(phi_train[k], [phi_eval[k], phi_train[k]], ridge)
                        for k in range(phi_train.shape[0])), strict=True)
    return {"p_eff_test": float(np.mean(test)), "p_eff_train": float(np.mean(train))}


def true_beta(cfg: Any, seed: int) -> torch.Tensor:
    """β of a linear_regression run: the first draw of its "data" stream (see
    `phenolab.tasks.regression.sample_replica`, whose documented draw order starts with β)."""
    from phenolab._rng import generator

    beta = torch.randn(cfg.d, generator=generator(seed, "data"), dtype=torch.float64)
    return beta / beta.norm()


def _linear_terms(setting: Setting, seeds: list[int]) -> dict[str, Any]:
    """Exact bias², variance and effective parameters given each seed's design matrix, averaged
    over seeds; plus the min-norm theory of Nakkiran et al. 2021 for the expected test MSE."""
    from phenolab.tasks.regression import sample_replica

    cfg, ridge = setting.task, setting.optim.ridge
    rows = []
    for seed in seeds:
        x_train, _, x_test, _ = sample_replica(cfg, seed)
        terms = linear_bias_variance(x_train, true_beta(cfg, seed), cfg.noise_std, ridge)
        terms["p_eff_test"], terms["p_eff_train"] = effective_parameters(x_train, [x_test, x_train], ridge)
        rows.append(terms)
    out = {k: float(np.mean([r[k] for r in rows])) for k in rows[0]}
    if ridge == 0:
        out["theory_test_mse"] = min_norm_excess_risk(cfg.n_train, cfg.d, cfg.noise_std) + cfg.noise_std ** 2
    return out
