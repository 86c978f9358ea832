"""The catalog as a person reads it: a static HTML report and the self-evaluation checklist.

`build_site(catalog, out)` renders every study (phenomenon studies recorded by `phenolab
reproduce`, and every stored setting) with its figures, signature, exact settings, reproducing
commands, catalog rows and Table 1 checklist, plus the hypotheses and their verdicts.
"""

from phenolab.report.checklist import QUESTIONS, ChecklistError, load_answers_file, record_answers, recorded_answers
from phenolab.report.site import build_site

__all__ = ["QUESTIONS", "ChecklistError", "build_site", "load_answers_file", "record_answers", "recorded_answers"]
