"""The study: sequential runs on any model, their results on disk, the statistics and verdicts read from them.

Running
  testbeds     which model a study runs on, by name (the model, its facts, its corpus, its hyperparameters)
  sequential   run_schedule (resumable) and what it measures: forgetting, language interference
  experiment   run_study: every method and seed of one StudyPlan; this module and its imports define a run
  runner       a study one run at a time, resumable, with provenance; the density grid point by point
  density      edit density, the density grid of a testbed and its plan
  tuning       every method tuned with the same budget on the tuning split
  calibration  the measurements behind the calibration gates (G1 write, G3 mechanism) and their explanations
  diagnosis    where forgetting enters, key by key
Recording and reading
  store        every file a study writes, written and read in one place
  provenance   commit, the run hash over the code's behaviour, equivalences, machine
  intervals    the statistics a verdict uses: final scores, 95% intervals over seeds, paired differences
  verdicts     claims a run must satisfy, the calibration gates, the verdict on a claim of the paper
  claims       Claim and require: a checked claim that prints "holds: ..." or raises
  readings     the tables the chapters read off runs, and Reading (what a chapter section shows)
  findings     what the chapters say about committed results (the full-scale study, the diagnosis)
  parameters   checks of a chapter's papermill parameters
"""

from langedit_mini.study.experiment import StudyPlan, StudyResult, combine_studies, run_study
from langedit_mini.study.sequential import forgetting_matrix, language_interference, run_schedule

__all__ = [
    "StudyPlan",
    "StudyResult",
    "combine_studies",
    "run_study",
    "forgetting_matrix",
    "language_interference",
    "run_schedule",
]
