"""The catalog as a person reads it: a static HTML report and the self-evaluation checklist.

`build_site(catalog, out)` renders, from one snapshot of the catalog and only where its rows
changed since the last build, every phenomenon study recorded by `phenolab reproduce` and every
phase diagram recorded by `phenolab phase` with its figures, signature, exact settings,
reproducing commands, catalog rows and Table 1 checklist, a page per setting that belongs to no
study, and the hypotheses and their verdicts; the index opens on one card per phenomenon.
`refresh_if_present(catalog)` brings every report already built from a catalog up to date (the
commands that add runs or verdicts call it).
"""

from phenolab.report.checklist import QUESTIONS, ChecklistError, load_answers_file, record_answers, recorded_answers
from phenolab.report.freshness import refresh_if_present
from phenolab.report.site import BuildResult, build_report, build_site

__all__ = ["QUESTIONS", "BuildResult", "ChecklistError", "build_report", "build_site", "load_answers_file",
           "record_answers", "recorded_answers", "refresh_if_present"]
