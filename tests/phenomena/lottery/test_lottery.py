"""Lottery tickets on real training: each round's mask has exactly the sparsity asked for, pruned
weights stay exactly zero through AdamW and weight decay, masks equal torch.nn.utils.prune's,
rewinding to step k equals the run at step k, merged batches equal per-model training, the
ticket beats both controls at high sparsity over 3 seeds, a study resumes per round, and the CLI
reproduces from the catalog."""

import json
import os

import numpy as np
import pytest
import torch
import torch.nn.utils.prune as torch_prune

import phenolab  # noqa: F401  (registers tasks, models, phenomena)
from phenolab._rng import generators
from phenolab.catalog import Catalog, run_id_for
from phenolab.engine import train
from phenolab.engine.packing import Part
from phenolab.execute.rerun import check_runs
from phenolab.phenomena import Trainer
from phenolab.phenomena.lottery import LOTTERY
from phenolab.phenomena.lottery.plan import LotteryPlan, study_model, study_work
from phenolab.phenomena.lottery.rounds import load_final, rebuild_start, run_rounds
from phenolab.phenomena.lottery.signature import error_barrier, interpolation_errors, lottery_signature
from phenolab.pruning import (
    expected_survivors,
    full_masks,
    layer_rates,
    prune_round,
    remaining_fraction,
    shuffle_masks,
)
from phenolab.settings import SettingError, resolve_setting, validate_setting
from phenolab.tasks import build_task
from tests.helpers import invoke, run_subprocess

NAME = "frankle_carbin2019_mnist1d"
# LeNet-300-100 shrunk to 100-50 on 1600 MNIST-1D points, 10 epochs, AdamW with weight decay,
# half of each hidden layer pruned per round so 3 rounds reach 14% of the weights.
REDUCED = {"task.num_samples": 2000, "model.widths": [100, 50], "schedule.epochs": 10, "eval.points": 4,
           "optim.name": "adamw", "optim.lr": 1.2e-3, "optim.weight_decay": 0.01,
           "prune.rate_hidden": 0.5, "prune.rate_output": 0.25}
SEEDS = [0, 1, 2]
ROUNDS = 3
TINY = {"task.num_samples": 300, "model.widths": [16, 8], "schedule.epochs": 3, "schedule.batch_size": 50,
        "eval.points": 3}


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    """The reduced study trained to 2 rounds, then extended to 3 (a resumed study)."""
    cat = Catalog(tmp_path_factory.mktemp("lottery") / "cat")
    trainer = Trainer.local(cat)
    written_2 = LOTTERY.train(LOTTERY.study(NAME, SEEDS, REDUCED, False, {"rounds": ROUNDS - 1}), trainer)
    full = LOTTERY.study(NAME, SEEDS, REDUCED, False, {"rounds": ROUNDS})
    written_3 = LOTTERY.train(full, trainer)
    return cat, full, full.plan, written_2, written_3


def _weight_names(plan):
    model = study_model(plan.base)
    return model.weight_names(model.init([torch.Generator()]))


@pytest.mark.slow
def test_study_resumes_at_the_round_it_reached(study):
    cat, full, plan, written_2, written_3 = study
    # rounds 0-2: dense + round-0 copy, 3 controls x 2 rounds, round-2 copy; each x 3 seeds
    assert len(written_2) == 3 * (2 + 3 * 2 + 1)
    round3 = {plan.run(ROUNDS, c).id for c in ("ticket", "reinit", "shuffle")} | {
        plan.run(ROUNDS, "ticket", "alternate").id}
    assert len(written_3) == 12 and {r.rsplit("-", 1)[0] for r in written_3} == round3
    assert LOTTERY.train(full, Trainer.local(cat)) == []  # nothing left to train
    assert cat.integrity_check() == "ok"


@pytest.mark.slow
def test_mask_sparsity_is_exactly_what_was_asked_each_round(study):
    cat, _, plan, _, _ = study
    names = _weight_names(plan)
    rates = layer_rates(names, 0.5, 0.25)
    previous = None
    for r in range(1, ROUNDS + 1):
        ticket = load_final(cat, plan.run(r, "ticket"), SEEDS)
        for control in ("ticket", "reinit", "shuffle"):
            params = load_final(cat, plan.run(r, control), SEEDS)
            for n in names:
                size = params[n][0].numel()
                kept = (params[n] != 0).reshape(len(SEEDS), -1).sum(1)
                assert kept.tolist() == [expected_survivors(size, rates[n], r)] * len(SEEDS), (r, control, n)
        reinit = load_final(cat, plan.run(r, "reinit"), SEEDS)
        shuffled = load_final(cat, plan.run(r, "shuffle"), SEEDS)
        for n in names:
            assert torch.equal(ticket[n] != 0, reinit[n] != 0)  # reinit: the same mask
            assert not torch.equal(ticket[n] != 0, shuffled[n] != 0)  # shuffle: another mask, same counts
            if previous is not None:
                assert not ((ticket[n] != 0) & (previous[n] == 0)).any()  # pruned weights never return
        previous = ticket


@pytest.mark.slow
def test_pruned_weights_stay_exactly_zero_through_adamw_and_weight_decay(study):
    cat, _, plan, _, _ = study
    assert plan.base.optim.name == "adamw" and plan.base.optim.weight_decay > 0
    names = _weight_names(plan)
    masks = full_masks(load_final(cat, plan.dense(), SEEDS), names)
    rates = layer_rates(names, 0.5, 0.25)
    theta0 = study_model(plan.base).init(generators(SEEDS, "init"))
    for r in range(1, ROUNDS + 1):  # masks replayed from the trained sources, independent of the zeros
        source = plan.dense() if r == 1 else plan.run(r - 1, "ticket")
        masks = prune_round(load_final(cat, source, SEEDS), masks, rates)
        ticket = load_final(cat, plan.run(r, "ticket"), SEEDS)
        for n in names:
            assert (ticket[n][masks[n] == 0] == 0).all()
            moved = ticket[n][masks[n] == 1] != theta0[n][masks[n] == 1]
            assert moved.float().mean() > 0.99  # survivors did train
    assert remaining_fraction(masks).tolist() == pytest.approx([0.14] * 3, abs=0.01)


@pytest.mark.slow
@pytest.mark.parametrize("optim", [{"name": "adam", "weight_decay": 0.1},
                                   {"name": "sgd", "momentum": 0.9, "weight_decay": 0.1}])
def test_engine_masks_hold_through_optimizer_state(optim):
    setting = resolve_setting(NAME, {**TINY, **{f"optim.{k}": v for k, v in optim.items()}})
    gen = torch.Generator().manual_seed(0)
    model = study_model(setting)
    init = model.init(generators([0, 1], "init"))
    masks = {n: (torch.rand(init[n].shape, generator=gen) > 0.8).float() for n in model.weight_names(init)}
    free = train(setting, [0, 1], init_params=init).params
    masked = train(setting, [0, 1], init_params=init, masks=masks).params
    for n, m in masks.items():
        assert (free[n][m == 0] != 0).all()  # without the mask these weights would be alive
        assert (masked[n][m == 0] == 0).all()


@pytest.mark.slow
def test_masks_equal_torch_prune_l1_unstructured(study):
    cat, _, plan, _, _ = study
    names = _weight_names(plan)
    rates = layer_rates(names, 0.5, 0.25)
    dense, ticket1 = load_final(cat, plan.dense(), SEEDS), load_final(cat, plan.run(1, "ticket"), SEEDS)
    round1 = prune_round(dense, full_masks(dense, names), rates)
    round2 = prune_round(ticket1, round1, rates)
    for k in range(len(SEEDS)):
        for n in names:
            w = dense[n][k]
            lin = torch.nn.Linear(w.shape[0], w.shape[1], bias=False)
            with torch.no_grad():
                lin.weight.copy_(w.t())  # nn.Linear stores [out, in]
            torch_prune.l1_unstructured(lin, "weight", amount=rates[n])
            assert torch.equal(lin.weight_mask.t(), round1[n][k])
            with torch.no_grad():  # a second call prunes a share of the survivors of the trained ticket
                lin.weight_orig.copy_(ticket1[n][k].t())
                lin(torch.zeros(1, w.shape[0]))  # the forward pre-hook refreshes lin.weight, which torch ranks
            torch_prune.l1_unstructured(lin, "weight", amount=rates[n])
            assert torch.equal(lin.weight_mask.t(), round2[n][k])


def test_global_scope_and_shuffle_keep_counts():
    gen = torch.Generator().manual_seed(1)
    params = {"w0": torch.randn(2, 30, 20, generator=gen), "w1": torch.randn(2, 20, 5, generator=gen) * 3}
    masks = full_masks(params, ["w0", "w1"])
    for r in range(1, 4):
        masks = prune_round(params, masks, {"w0": 0.2, "w1": 0.2}, scope="global")
        kept = sum(m.reshape(2, -1).sum(1) for m in masks.values())
        assert kept.tolist() == [expected_survivors(700, 0.2, r)] * 2
    assert masks["w1"].mean() > masks["w0"].mean()  # the larger-magnitude layer keeps more
    shuffled = shuffle_masks(masks, [torch.Generator().manual_seed(s) for s in (0, 1)])
    for n in masks:
        assert torch.equal(shuffled[n].reshape(2, -1).sum(1), masks[n].reshape(2, -1).sum(1))
        assert not torch.equal(shuffled[n], masks[n])


@pytest.mark.slow
def test_rewinding_to_step_k_equals_the_run_at_step_k():
    setting = resolve_setting(NAME, TINY)
    plan = LotteryPlan(setting, rounds=1, rewind_step=7)
    source = plan.rewind_source()
    assert source.schedule.steps == 7 and source.prune.control == "dense"
    full = train(plan.dense().with_overrides({"checkpoints": "eval", "eval.every": 7}), [0, 1])
    theta_k = train(source, [0, 1]).params
    for n, v in theta_k.items():
        assert torch.equal(full.checkpoints[7][n], v)
    assert not torch.equal(full.params["w0"], theta_k["w0"])


@pytest.mark.slow
def test_merged_batch_equals_per_model_training(tmp_path):
    setting = resolve_setting(NAME, TINY)
    plan = LotteryPlan(setting, rounds=1, rewind_step=4)
    a, b = Catalog(tmp_path / "a"), Catalog(tmp_path / "b")
    written = run_rounds(plan, [0, 1], a, batched=True)
    assert sorted(written) == sorted(run_rounds(plan, [0, 1], b, batched=False))
    for run_id in written:
        pa, pb = a.load_checkpoint(run_id), b.load_checkpoint(run_id)
        for n in pa:
            torch.testing.assert_close(pa[n], pb[n], atol=1e-6, rtol=1e-5)
    assert a.run(written[-1])["replicas_in_batch"] == 8  # 3 controls + the copy, 2 seeds each


@pytest.mark.slow
def test_progress_counts_every_batch_up_to_the_study_total(tmp_path):
    plan = LotteryPlan(resolve_setting(NAME, TINY), rounds=2, rewind_step=4)
    runs, steps = study_work(plan, [0, 1])
    # dense, rewind source, round-0 ticket and copy, 3 controls x 2 rounds, round-2 copy; 2 seeds each
    assert runs == 2 * 11
    assert steps == 4 + 3 * 15  # source to step 4, then rounds 0-2: 3 epochs of ceil(240 / 50) steps
    cat, seen = Catalog(tmp_path / "cat"), []
    run_rounds(plan, [0, 1], cat, progress=lambda s, r: seen.append((s, r)))
    assert seen[-1] == (steps, runs) and seen == sorted(seen)  # never backwards
    again: list[tuple[int, int]] = []
    assert run_rounds(plan, [0, 1], cat, progress=lambda s, r: again.append((s, r))) == []
    assert again[-1] == (steps, runs) and len(again) == 4  # stored batches count as done: source, rounds 0-2


@pytest.mark.slow
def test_reproduce_draws_a_progress_bar_over_the_rounds(tmp_path, monkeypatch):
    monkeypatch.setenv("PHENOLAB_PROGRESS", "1")  # the bar is drawn on a terminal only, unless asked
    args = ["reproduce", "lottery", "--setting", NAME, "--seeds", "2", "--rounds", "1", "--catalog", str(tmp_path)]
    for key, value in TINY.items():
        args += ["--set", f"{key}={json.dumps(value)}"]
    res = invoke(*args)
    assert res.exit_code == 0, res.output
    runs, steps = LOTTERY.staged_work(LOTTERY.study(NAME, [0, 1], TINY, False, {"rounds": 1}))
    assert "training lottery" in res.stderr and f"{steps}/{steps} steps · runs {runs}/{runs}" in res.stderr


@pytest.mark.slow
def test_ticket_beats_both_controls_at_high_sparsity(study):
    cat, _, plan, _, _ = study
    sig = lottery_signature(cat, plan, SEEDS)
    acc = {(r["round"], r["control"], r["seed"]): r["test_acc"] for r in sig.per_run}
    gaps = {c: [acc[ROUNDS, "ticket", s] - acc[ROUNDS, c, s] for s in SEEDS] for c in ("reinit", "shuffle")}
    print(f"\nat {100 * sig.extra['fractions'][ROUNDS]:.1f}% of weights: ticket - reinit {gaps['reinit']}, "
          f"ticket - shuffle {gaps['shuffle']}")
    assert min(gaps["reinit"]) > 0 and min(gaps["shuffle"]) > 0  # every seed, both controls
    advantage = [v for k, v in sig.summary.items() if k.startswith("ticket advantage")]
    assert advantage and all(a["mean"] > 0 for a in advantage)
    assert sig.summary["ticket matches dense down to (% weights)"] is not None
    assert sig.summary["reinit matches dense down to (% weights)"] is None
    fields = LOTTERY.fields(NAME)  # every key explains itself, per-round ones through their patterns
    assert all(fields.get(k) is not None for k in [*sig.summary, *sig.per_run[0]])


@pytest.mark.slow
def test_instability_endpoints_are_the_stored_runs(study):
    cat, _, plan, _, _ = study
    rows = lottery_signature(cat, plan, SEEDS).extra["instability"]
    # every copy in the catalog: rounds 0 and 2 from the 2-round study, 3 from its extension
    assert [(r["rewind_step"], r["round"]) for r in rows] == [(0, 0), (0, ROUNDS - 1), (0, ROUNDS)]
    for row in rows:
        errors = np.asarray(row["errors"])
        for setting, col in ((plan.run(row["round"], "ticket"), 0),
                             (plan.run(row["round"], "ticket", "alternate"), -1)):
            runs = cat.runs(setting_id=setting.id).sort_values("seed")
            assert runs["seed"].tolist() == SEEDS
            np.testing.assert_allclose(errors[:, col], 1 - runs["final_test_acc"].to_numpy(), atol=1e-12)
        assert (np.asarray(row["barriers"]) >= 0).all()
    model, setting = study_model(plan.base), plan.base
    params = load_final(cat, plan.dense(), SEEDS)
    data = build_task(setting.task, SEEDS)
    same = interpolation_errors(setting, model, params, params, data)
    assert np.allclose(error_barrier(same), 0)  # a run with itself: no barrier


@pytest.mark.slow
def test_rerun_retrains_stored_rounds_from_their_rebuilt_starts_bit_for_bit(study):
    """`phenolab rerun` of a ticket round, its controls and an instability copy: each batch's start
    (masks pruned from the stored earlier tickets, reinit and shuffle draws, θ_k) is rebuilt from the
    catalog and every curve comes back bit for bit."""
    cat, _, plan, _, _ = study
    asked = [run_id_for(plan.run(2, c).id, 1) for c in ("ticket", "reinit", "shuffle")]
    asked += [run_id_for(plan.run(ROUNDS, "ticket", "alternate").id, 0), run_id_for(plan.dense().id, 2)]
    checks = check_runs(cat, asked)
    assert [c.run_id for c in checks] == asked
    assert all(c.identical and c.whole_batch for c in checks), [(c.run_id, c.max_abs_diff) for c in checks]
    assert {c.batch_size for c in checks} == {12, 6}  # round 2: 3 controls + copy; round 0: dense + copy


def test_a_batch_that_is_not_a_lottery_round_is_left_to_its_own_init():
    setting = resolve_setting(NAME, TINY)
    assert rebuild_start(Catalog("/nonexistent/cat"), (Part(setting.with_overrides({"prune": None}), (0,)),)) is None
    dense = LotteryPlan(setting, rounds=1).dense()
    assert rebuild_start(Catalog("/nonexistent/cat"), (Part(dense, (0, 1)),)) is None  # trains from its own init


@pytest.mark.slow
def test_reproduce_cli_reuses_catalog_and_prints_json(study, tmp_path):
    cat, _, _, _, _ = study
    args = ["reproduce", "lottery", "--setting", NAME, "--seeds", "3", "--rounds", str(ROUNDS), "--json",
            "--catalog", str(cat.path)]
    for key, value in REDUCED.items():
        args += ["--set", f"{key}={json.dumps(value)}"]
    res = invoke(*args)
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    assert out["trained"] == 0 and out["dense_test_acc"]["n"] == 3
    assert out["figure"].endswith(".png") and os.path.getsize(out["figure"]) > 10_000
    assert len(out["per_run"]) == 3 * (1 + 3 * ROUNDS)
    # the report's study page gives the command that rebuilds exactly this study, options included
    from phenolab.report import build_site

    page = next(build_site(cat, tmp_path / "site").parent.glob("phenomenon-lottery*.html")).read_text()
    assert f"--rounds {ROUNDS}" in page and "phenolab reproduce lottery --setting" in page


@pytest.mark.slow
def test_bad_options_are_one_line_and_write_nothing(tmp_path):
    with pytest.raises(SettingError, match="--rounds 0"):
        LOTTERY.study(NAME, [0], TINY, False, {"rounds": 0})
    with pytest.raises(SettingError, match="--rewind-step 10000"):
        LOTTERY.study(NAME, [0], TINY, False, {"rewind_step": 10_000})
    with pytest.raises(SettingError, match="prune.round"):
        LOTTERY.study(NAME, [0], {"prune.round": 3}, False, {})
    with pytest.raises(SettingError, match="model.name 'linear'"):
        LOTTERY.study(NAME, [0], {"model.name": "linear", "optim.name": "lstsq"}, False, {})
    cat = tmp_path / "cat"
    res = run_subprocess("reproduce", "lottery", "--rounds", "0", "--catalog", cat, cwd=tmp_path, timeout=120)
    assert res.returncode == 2 and "--rounds 0" in res.stderr and len(res.stderr.strip().splitlines()) == 1
    assert not (cat / "catalog.db").exists()


def test_each_round_and_control_has_its_own_id():
    plan = LotteryPlan(resolve_setting(NAME, {}), rounds=15)
    ids = [s.id for s in plan.settings()]
    assert len(ids) == len(set(ids)) == 1 + 15 * 3 + 2  # dense, 3 controls x 15, copies of rounds 0 and 15
    assert plan.dense().id == resolve_setting(NAME, {}).id  # `phenolab train` of the canonical setting reuses it
    plain = validate_setting({k: v for k, v in plan.base.model_dump(mode="json").items() if k != "prune"})
    assert plain.prune is None and plain.id != plan.dense().id


def test_quick_note_never_claims_a_budget_a_set_field_replaced():
    quick = LOTTERY.study(NAME, [0], {}, True)
    assert quick.quick and quick.settings[0].schedule.epochs == 5 and "5 epochs per round" in quick.note
    own = LOTTERY.study(NAME, [0], {"schedule.epochs": 3}, True)  # the user's budget replaces --quick's
    assert own.settings[0].schedule.epochs == 3 and own.note == "" and not own.quick
    other = LOTTERY.study(NAME, [0], {"optim.lr": 1e-3}, True)  # an unrelated field leaves --quick on
    assert other.quick and other.settings[0].schedule.epochs == 5 and other.note == quick.note
