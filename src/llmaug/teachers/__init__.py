"""Teachers: the LLMs that write data, behind one cached, budgeted interface."""

from llmaug.teachers.base import Backend, GenerationParams, Message, TeacherRequest, TeacherResponse
from llmaug.teachers.cache import ResponseCache
from llmaug.teachers.spec import parse_spec
from llmaug.teachers.teacher import BUDGET_FINISH, Teacher
from llmaug.teachers.usage import Budget, Price, Usage

__all__ = [
    "BUDGET_FINISH", "Backend", "Budget", "GenerationParams", "Message", "Price", "ResponseCache", "Teacher",
    "TeacherRequest", "TeacherResponse", "Usage", "parse_spec",
]
