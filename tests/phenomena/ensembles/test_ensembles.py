"""Deep ensembles on real training: the decompositions are identities at every evaluated step,
independent members' ensembles beat their mean member, and joint training shows up in the
signature; the command end to end."""

from __future__ import annotations

import json

import pytest
import torch

import phenolab
from phenolab.analysis.ensemble import ce_decomposition, prob_average_decomposition
from phenolab.catalog import Catalog
from phenolab.phenomena import get_phenomenon
from phenolab.phenomena.ensembles.members import load_members, perturbed
from tests.helpers import ok, user_error

pytestmark = pytest.mark.slow
SMALL = {"task.num_samples": 1000, "schedule.steps": 150, "model.width": 48, "eval.points": 5}


def test_decompositions_are_exact_at_every_evaluated_step(tmp_path) -> None:
    rep = phenolab.reproduce("ensembles", "lakshminarayanan2017_mnist1d", seeds=2, catalog=tmp_path,
                             overrides={**SMALL, "ensemble.members": 4, "checkpoints": "eval"})
    setting = rep.study.settings[0]
    steps = sorted(Catalog(tmp_path).curves(setting_id=setting.id)["step"].unique())
    assert len(steps) >= 4
    for step in steps:
        members = load_members(Catalog(tmp_path), setting, [0, 1], int(step))
        logits = members.logits(members.x_test)
        for e in range(2):
            ce = ce_decomposition(logits[e], members.y_test)
            assert ce["mean_loss"] - ce["variance"] == pytest.approx(ce["bias"], abs=1e-12)
            assert ce["variance"] >= 0
            prob = prob_average_decomposition(logits[e], members.y_test)
            assert ce["mean_loss"] - prob["diversity"] == pytest.approx(prob["loss"], abs=1e-12)


def test_independent_members_ensemble_beats_the_mean_member(tmp_path) -> None:
    rep = phenolab.reproduce("ensembles", "lakshminarayanan2017_mnist1d", seeds=3, catalog=tmp_path,
                             overrides={**SMALL, "ensemble.members": 8})
    s = rep.signature.summary
    assert [k for k in rep.study.sizes] == [1, 2, 4, 8]
    assert s["gain@1"]["mean"] == 0 and s["diversity@1"]["mean"] == pytest.approx(0, abs=1e-12)
    assert s["ensemble_loss"]["mean"] < s["member_loss"]["mean"]  # diversity > 0: members differ
    assert s["ensemble_error"]["mean"] < s["member_error"]["mean"]  # not implied by any identity
    assert s["gain@2"]["mean"] > 0 and s["gain@4"]["mean"] > 0 and s["gain"]["mean"] > 0
    assert s["disagreement"]["mean"] > 0.05
    assert s["ensembles"] == 3 and s["members"] == 8
    assert rep.figure is not None and rep.figure.is_file()


def test_joint_and_diversity_variants_are_compared_on_the_same_ensembles(tmp_path) -> None:
    rep = phenolab.reproduce("ensembles", "jeffares2024_joint", seeds=2, catalog=tmp_path, overrides=SMALL)
    s = rep.signature.summary
    assert rep.signature.extra["variants"] == ["beta0", "beta0.5", "beta1"]
    # fully joint members are poor on their own and far more diverse (learner collusion)
    assert s["member_error@beta1"]["mean"] > s["member_error@beta0"]["mean"]
    assert s["diversity@beta1"]["mean"] > s["diversity@beta0"]["mean"]
    fort = phenolab.reproduce("ensembles", "fort2019_diversity", seeds=2, catalog=tmp_path,
                              overrides={**SMALL, "ensemble.members": 4})
    assert fort.signature.extra["variants"] == ["both", "init", "order", "perturbed"]
    members = load_members(Catalog(tmp_path), fort.study.settings[0], [0])
    noisy = perturbed(members, 0.1)
    first = members.params["w0"][0]
    assert not torch.equal(noisy.params["w0"][1], first)
    assert torch.equal(perturbed(members, 0.1).params["w0"], noisy.params["w0"])  # same draws every time


def test_translation_setting_measures_prediction_change(tmp_path) -> None:
    rep = phenolab.reproduce("ensembles", "gerken2024_translation", seeds=2, catalog=tmp_path,
                             overrides={**SMALL, "ensemble.members": 4})
    s = rep.signature.summary
    for v in ("translated", "fixed"):
        for m in ("member_tv", "ensemble_tv", "member_flips", "ensemble_flips"):
            assert 0 < s[f"{m}@{v}"]["mean"] < 1
        assert s[f"tv_ratio@{v}"]["mean"] == pytest.approx(
            s[f"ensemble_tv@{v}"]["mean"] / s[f"member_tv@{v}"]["mean"], rel=0.2)


def test_command_end_to_end_and_bad_input(tmp_path, monkeypatch, capsys) -> None:
    args = ["--setting", "lakshminarayanan2017_mnist1d", "--seeds", "2", "-c", tmp_path]
    small = [a for k, v in {**SMALL, "ensemble.members": 2}.items() for a in ("--set", f"{k}={v}")]
    text = ok("reproduce", "ensembles", *args, *small, "--json")
    out = json.loads(text[text.index("{"):])  # after the plan line
    assert out["members"] == 2 and out["gain"]["n"] == 2 and out["gain@1"]["mean"] == 0
    assert "diversity" in out["fields"] and out["fields"]["diversity"]["unit"] == "nats"
    assert get_phenomenon("ensembles").fields("x").get("gain@4") is not None
    line = user_error(monkeypatch, capsys, "reproduce", "ensembles", *args, "--set", "ensemble.joint=0.5")
    assert "ensemble.joint 0.5 needs ensemble.diversity 'init'" in line
    line = user_error(monkeypatch, capsys, "reproduce", "ensembles", *args, "--perturbation", "0")
    assert "--perturbation 0.0: input should be greater than 0" in line


def test_a_phase_map_over_the_ensemble_size_trains_each_cells_own_members(tmp_path) -> None:
    from phenolab.execute.grid import parse_grid_arg
    from phenolab.phenomena import Trainer
    from phenolab.studies.phase import phase_cells, phase_field, phase_table, train_cells

    ens = get_phenomenon("ensembles")
    small = {k: v for k, v in SMALL.items() if k != "model.width"}
    axes, cells = phase_cells(ens, "lakshminarayanan2017_mnist1d", {**small, "schedule.steps": 60},
                              [parse_grid_arg("model.width=16,32"), parse_grid_arg("ensemble.members=2,4")], [0, 1])
    assert {len(c.study.seeds) for c in cells} == {4, 8}  # 2 ensembles of 2 or of 4 members
    cat = Catalog(tmp_path)
    train_cells(ens, cells, Trainer.local(cat))
    table = phase_table(cat, ens, axes, cells, phase_field(ens, None, "lakshminarayanan2017_mnist1d"))
    assert len(table) == 4 and set(table["n"]) == {2} and table["n_missing"].eq(0).all()


def test_members_with_their_own_label_noise_are_read_without_a_shared_training_set(tmp_path) -> None:
    """Independent members draw their own noisy labels: no one training set stands for theirs."""
    over = {**SMALL, "schedule.steps": 20, "ensemble.members": 2, "task.label_noise": 0.2, "checkpoints": "final"}
    rep = phenolab.reproduce("ensembles", "lakshminarayanan2017_mnist1d", seeds=1, catalog=tmp_path, overrides=over)
    members = load_members(Catalog(tmp_path), rep.study.settings[0], [0])
    assert not members.shared_train
    assert "train_diversity" not in rep.signature.summary and rep.signature.summary["gain"]["n"] == 1
