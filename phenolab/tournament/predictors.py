"""Monotone maps measure → target, fitted on the scope and then frozen as plain numbers.

A predictor is stored whole in the tournament's registration entry (the hash-chained log), so it
cannot be refitted or edited after the held-out runs exist without `phenolab hypothesis verify`
saying so. Forms: `isotonic` (scikit-learn's isotonic regression in the claimed direction, stored
as its knots; a prediction is the linear interpolation between them, clipped at the ends, which is
what `IsotonicRegression(out_of_bounds="clip").predict` computes), and the parametric `linear`
(target = a + b·x) and `log-linear` (a + b·log x), whose slope is held at 0 when the least-squares
fit goes against the claimed direction. A baseline claims no direction (`auto`): its isotonic
direction is the sign of the scope's Spearman ρ, as scikit-learn chooses it.
"""

from __future__ import annotations

import math
import warnings
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict

from phenolab.settings._canonical import content_hash

_DIGEST_PREFIX = b"phenolab.tournament-predictors/1\n"


class Predictor(BaseModel):
    """A frozen map: everything `predict` needs, as JSON numbers."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    form: Literal["isotonic", "linear", "log-linear", "constant"]
    increasing: bool
    x: tuple[float, ...] = ()  # isotonic knots
    y: tuple[float, ...] = ()
    coef: tuple[float, ...] = ()  # linear / log-linear: (a, b)
    fallback: float  # the scope's mean target: the prediction where the value is undefined
    n: int  # scope points it was fitted on
    x_range: tuple[float, float] | None = None


def fit_predictor(x: np.ndarray, y: np.ndarray, form: str, direction: str) -> Predictor:
    """Fit the map on the scope's finite (x, y) pairs; constant when x does not vary."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    mean = float(np.mean(y[np.isfinite(y)])) if np.isfinite(y).any() else math.nan
    ok = np.isfinite(x) & np.isfinite(y) & ((x > 0) if form == "log-linear" else True)
    x, y = x[ok], y[ok]
    if y.size < 2 or np.ptp(x) == 0:
        return Predictor(form="constant", increasing=direction != "negative", coef=(mean,), fallback=mean,
                         n=int(y.size), x_range=(float(x.min()), float(x.max())) if x.size else None)
    span = (float(x.min()), float(x.max()))
    if form == "isotonic":
        from sklearn.isotonic import IsotonicRegression  # lazy: scikit-learn costs ~1 s of CLI start-up

        increasing: bool | str = "auto" if direction == "auto" else direction == "positive"
        with warnings.catch_warnings():  # "auto" warns when ρ's interval spans 0: the baseline takes it anyway
            warnings.simplefilter("ignore", UserWarning)
            iso = IsotonicRegression(increasing=increasing, out_of_bounds="clip").fit(x, y)
        return Predictor(form="isotonic", increasing=bool(iso.increasing_), x=tuple(map(float, iso.X_thresholds_)),
                         y=tuple(map(float, iso.y_thresholds_)), fallback=mean, n=int(y.size), x_range=span)
    g = np.log(x) if form == "log-linear" else x
    b, a = np.polyfit(g, y, 1)
    if direction != "auto" and b * (1 if direction == "positive" else -1) < 0:
        a, b = mean, 0.0  # the claimed direction allows no better line than the mean
    increasing = b >= 0 if direction == "auto" else direction == "positive"
    return Predictor(form=form, increasing=bool(increasing), coef=(float(a), float(b)), fallback=mean,
                     n=int(y.size), x_range=span)


def predict(p: Predictor, x: np.ndarray) -> np.ndarray:
    """The frozen map at x; its fallback where x is not finite (or ≤ 0 for log-linear)."""
    x = np.asarray(x, dtype=float)
    ok = np.isfinite(x) & ((x > 0) if p.form == "log-linear" else True)
    out = np.full(x.shape, p.fallback, dtype=float)
    if p.form == "constant":
        out[:] = p.coef[0]
    elif p.form == "isotonic":
        out[ok] = np.interp(x[ok], p.x, p.y)
    else:
        with np.errstate(divide="ignore", invalid="ignore"):
            g = np.log(x[ok]) if p.form == "log-linear" else x[ok]
        out[ok] = p.coef[0] + p.coef[1] * g
    return out


def undefined(p: Predictor, x: np.ndarray) -> int:
    """How many of x got the fallback (the value was undefined there)."""
    x = np.asarray(x, dtype=float)
    ok = np.isfinite(x) & ((x > 0) if p.form == "log-linear" else True)
    return 0 if p.form == "constant" else int((~ok).sum())


def predictors_digest(predictors: dict[str, Predictor]) -> str:
    """SHA-256 over the frozen predictors: what a result says it was scored with."""
    return content_hash(_DIGEST_PREFIX, {k: v.model_dump(mode="json") for k, v in sorted(predictors.items())})
