"""Export catalog runs to an MLflow tracking store, for people who browse experiments there.

One MLflow run per phenolab run: params = the flattened setting (dotted paths, as `--set` takes
them) plus the seed, metrics = every curve with its steps, tags = phenomenon (from the catalog's
signature notes; empty when no study names the setting), setting id, seed and run id. Exporting
again skips runs already in the experiment (matched by the `phenolab.run_id` tag), so the store
never holds a run twice. MLflow is an optional dependency: `pip install 'phenolab[mlflow]'`.
"""

from __future__ import annotations

import json
import re
from typing import Any

from phenolab.catalog import Catalog, CatalogError

DEFAULT_EXPERIMENT = "phenolab"
_BATCH = 1000  # MLflow's log_batch limit on metrics per request (params: 100, tags: 100)
_PARAM_BATCH = 100


def _flatten(obj: dict[str, Any], prefix: str = "") -> dict[str, str]:
    out: dict[str, str] = {}
    for key, value in obj.items():
        if isinstance(value, dict) and value:
            out.update(_flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))
    return out


def metric_key(name: str) -> str:
    """A curve name as an MLflow metric key, which allows only letters, digits and `_ - . space`:
    `prime_parameter_count(scale=10.0)` -> `prime_parameter_count_scale_10.0` (originals go in a tag)."""
    return re.sub(r"_+", "_", re.sub(r"[^\w.\- ]", "_", name)).strip("_ ") or "metric"


def setting_params(setting_json: dict[str, Any]) -> dict[str, str]:
    """A setting as MLflow params: dotted path -> JSON text of the value ("adamw", 0.01, [0.9,0.98])."""
    return _flatten(setting_json)


def phenomena_of_settings(catalog: Catalog) -> dict[str, str]:
    """setting id -> phenomenon, from the studies `phenolab reproduce` recorded."""
    out: dict[str, str] = {}
    from phenolab.report.studies import signature_studies

    for study in signature_studies(catalog):
        for sid in study.setting_ids:
            if study.phenomenon:
                out[sid] = study.phenomenon
    return out


def export_mlflow(catalog: Catalog, uri: str, where: dict[str, Any] | None = None, *,
                  run_ids: list[str] | None = None, experiment: str = DEFAULT_EXPERIMENT) -> int:
    """Write the catalog's runs (those matching `where`, and among `run_ids` if given) to the MLflow
    store at `uri`; returns how many were written (runs already in that experiment are skipped)."""
    try:
        from mlflow.entities import Metric, Param, RunTag
        from mlflow.tracking import MlflowClient
    except ImportError:
        raise CatalogError("MLflow export needs mlflow: pip install 'phenolab[mlflow]'") from None

    runs = catalog.runs(where=where)
    if run_ids is not None:
        runs = runs[runs["run_id"].isin(set(run_ids))]
    if runs.empty:
        return 0
    client = MlflowClient(tracking_uri=uri)
    found = client.get_experiment_by_name(experiment)
    exp_id = found.experiment_id if found is not None else client.create_experiment(experiment)
    done = _exported_run_ids(client, exp_id)
    phenomena = phenomena_of_settings(catalog)
    params_of: dict[str, dict[str, str]] = {}
    written = 0
    for row in runs.itertuples(index=False):
        if row.run_id in done:
            continue
        if row.setting_id not in params_of:
            params_of[row.setting_id] = setting_params(catalog.setting(row.setting_id))
        tags = {
            "phenolab.run_id": row.run_id, "phenolab.setting_id": row.setting_id, "phenolab.seed": str(row.seed),
            "phenolab.phenomenon": phenomena.get(row.setting_id, ""), "phenolab.task": str(row.task),
            "phenolab.model": str(row.model), "phenolab.catalog": str(catalog.path),
        }
        start_ms, end_ms = int(float(row.started) * 1000), int(float(row.finished) * 1000)
        run = client.create_run(exp_id, start_time=start_ms, tags=tags, run_name=row.run_id)
        rid = run.info.run_id
        try:
            params = [Param(k, v) for k, v in {**params_of[row.setting_id], "seed": str(row.seed)}.items()]
            curves = catalog.curves(run_ids=[row.run_id])
            keys = {m: metric_key(m) for m in curves["metric"].unique()}
            metrics = [Metric(keys[m], float(v), end_ms, int(s))
                       for m, s, v in zip(curves["metric"], curves["step"], curves["value"], strict=True)]
            for lo in range(0, len(params), _PARAM_BATCH):
                client.log_batch(rid, params=params[lo:lo + _PARAM_BATCH])
            for lo in range(0, len(metrics), _BATCH):
                client.log_batch(rid, metrics=metrics[lo:lo + _BATCH])
            renamed = {k: m for m, k in keys.items() if k != m}
            client.log_batch(rid, tags=[RunTag("phenolab.wall_s", str(row.wall_s)),
                                        RunTag("phenolab.metric_names", json.dumps(renamed, sort_keys=True))])
            client.set_terminated(rid, status="FINISHED", end_time=end_ms)
        except BaseException:
            client.delete_run(rid)  # no half-exported run is left to be taken for a whole one
            raise
        written += 1
    return written


def _exported_run_ids(client: Any, exp_id: str) -> set[str]:
    """phenolab run ids whose export finished; unfinished ones (an export killed midway) are deleted."""
    from mlflow.entities import ViewType

    out: set[str] = set()
    token = None
    while True:
        page = client.search_runs([exp_id], run_view_type=ViewType.ACTIVE_ONLY, max_results=1000, page_token=token)
        for r in page:
            ours = r.data.tags.get("phenolab.run_id")
            if ours and r.info.status == "FINISHED":
                out.add(ours)
            elif ours:
                client.delete_run(r.info.run_id)
        token = page.token
        if not token:
            return out
