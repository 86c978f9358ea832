"""The figure 4 study (`phenolab.studies.figure4`): a study of its own whose paper settings are
registered lazily, with a quick variant that says so."""

import pytest

from phenolab import SettingError


def test_figure4_study_registers_the_paper_settings_lazily_and_says_quick() -> None:
    from phenolab.phenomena import PHENOMENA
    from phenolab.studies import STUDIES
    from phenolab.studies.figure4 import FIGURE4, SETTING, panel_hypotheses

    assert STUDIES["figure4"] is FIGURE4 and "figure4" not in PHENOMENA  # a study of its own, not a phenomenon
    quick = FIGURE4.study(SETTING, [0, 1, 2], {}, quick=True)
    assert "--quick" in quick.note and len(quick.settings) == 8  # 7 widths + 1 grokking setting
    assert all(s.checkpoints == "final" and any(m.name == "prime_parameter_count" and m.params == {"scale": 10}
                                                for m in s.measures) for s in quick.settings)
    paper = panel_hypotheses(list(range(10)), quick=False)
    dd, grok = paper["double_descent"], paper["grokking"]
    assert dd.scope[0].setting == "greydanus_kobak2024" and grok.scope[0].setting == "power2022"
    assert [s.model.width for s in dd.scope_settings()[0]][:3] == [2, 3, 4] and len(dd.scope_settings()[0]) == 19
    assert dd.id != panel_hypotheses(list(range(5)), quick=False)["double_descent"].id  # seeds are part of it
    # the full grokking panel trains the very runs of `reproduce grokking --setting power2022 --quick`
    from phenolab.phenomena.grokking import GROKKING

    shared = GROKKING.study("power2022", [0], {}, quick=True).settings[0]
    assert grok.scope_settings()[0][0].id == shared.id and shared.schedule.steps == 10_000
    assert "power2022" in FIGURE4.study(SETTING, [0], {}, quick=False).note
    with pytest.raises(SettingError, match="no --set"):
        FIGURE4.study(SETTING, [0], {"task.p": 7}, quick=True)
