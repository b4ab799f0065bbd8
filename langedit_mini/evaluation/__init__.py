"""Scoring an edited model: token scoring, the edit metrics, and general ability.

scoring          teacher-forced token accuracy and greedy exact match of (prompt, answer) pairs
edit_metrics     reliability, generality, locality, portability, cross-lingual transfer, as DataFrames
pocket_probes    the pocket model's general-ability probes and fact tables
general_tasks    XNLI, PAWS-X, MLQA and WikiANN few-shot for real LLMs
"""

from langedit_mini.evaluation.edit_metrics import (
    cross_lingual,
    cross_lingual_matrix,
    evaluate_requests,
    locality_reference,
)
from langedit_mini.evaluation.scoring import Scores, score

__all__ = ["cross_lingual", "cross_lingual_matrix", "evaluate_requests", "locality_reference", "Scores", "score"]
