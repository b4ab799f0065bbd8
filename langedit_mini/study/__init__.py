"""The study: sequential runs, the multi-method study, its results on disk, provenance and claims.

sequential   run_schedule (resumable) and what it measures: forgetting, language interference
experiment   run_study over methods and seeds, combine_studies, the main table with intervals
results      the full-scale study's parts on disk, their merge, verdicts computed from the runs
provenance   commit, code hash, machine
claims       require: a checked claim that prints "holds: ..." or raises
"""

from langedit_mini.study.experiment import StudyResult, averages, combine_studies, main_table, run_study
from langedit_mini.study.sequential import forgetting_matrix, language_interference, run_schedule

__all__ = [
    "StudyResult",
    "averages",
    "combine_studies",
    "main_table",
    "run_study",
    "forgetting_matrix",
    "language_interference",
    "run_schedule",
]
