"""Students: small models trained from scratch on seed + synthetic data."""

from llmaug.students.base import Student, student_input
from llmaug.students.metrics import Metrics, evaluate, score
from llmaug.students.spec import fold_student_options, make_student, student_class

__all__ = ["Metrics", "Student", "evaluate", "fold_student_options", "make_student", "score", "student_class",
           "student_input"]
