"""Students: small models trained from scratch on seed + synthetic data."""

from llmaug.students.base import Student, student_input
from llmaug.students.metrics import Metrics, evaluate, score
from llmaug.students.spec import STUDENT_KINDS, make_student

__all__ = ["STUDENT_KINDS", "Metrics", "Student", "evaluate", "make_student", "score", "student_input"]
