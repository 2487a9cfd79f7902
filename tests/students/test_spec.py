import json
import subprocess
import sys

import pytest

from llmaug.errors import ConfigError, StudentError
from llmaug.students.base import MANIFEST, Student
from llmaug.students.embed_lr import EmbedLRStudent
from llmaug.students.finetune import FinetuneStudent
from llmaug.students.spec import make_student, student_class
from llmaug.students.tfidf import TfidfStudent


@pytest.mark.parametrize(
    ("spec", "cls"), [("tfidf", TfidfStudent), ("embed-lr", EmbedLRStudent), ("finetune", FinetuneStudent)]
)
def test_spec_names_the_student_kind(spec, cls):
    student = make_student(spec)
    assert type(student) is cls
    assert student.kind == spec
    assert student_class(spec) is cls


def test_unknown_spec_lists_the_known_ones():
    with pytest.raises(StudentError, match="unknown student 'nope'; choose from finetune, embed-lr, tfidf, causal-lm"):
        make_student("nope")


def test_options_reach_the_student_and_bad_ones_are_student_errors():
    options = make_student("tfidf", C=2, ngram_range=(1, 3)).options
    assert options == {"max_features": 20000, "ngram_range": [1, 3], "C": 2.0}
    with pytest.raises(ConfigError, match=r"student 'tfidf' has no option 'layers' \(its options: max_features, ngram_range, C\)"):
        make_student("tfidf", layers=3)
    with pytest.raises(ConfigError, match="option 'C' of student 'tfidf': Input should be greater than 0"):
        make_student("tfidf", C=0)


def test_model_path_in_the_spec_becomes_the_model_option(tmp_path):
    assert make_student(f"finetune:{tmp_path}").options["model"] == str(tmp_path)
    assert make_student(f"embed-lr:{tmp_path}").options["model"] == str(tmp_path)
    with pytest.raises(StudentError, match="not found"):
        make_student(f"embed-lr:{tmp_path / 'missing'}")


def test_tfidf_student_never_imports_torch():
    script = (
        "import sys; from llmaug.students import make_student; from llmaug.data.example import Example;"
        "rows = [Example.create('red apple', 'a'), Example.create('blue sky', 'b')];"
        "make_student('tfidf').fit(rows).predict(rows); print('torch' in sys.modules)"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"


def test_loading_a_folder_that_is_not_a_saved_student_fails_clearly(tmp_path):
    with pytest.raises(StudentError, match="not a saved llmaug student"):
        Student.load(tmp_path)
    (tmp_path / MANIFEST).write_text(json.dumps({"kind": "nope", "labels": []}))
    with pytest.raises(StudentError, match="unreadable student manifest"):
        Student.load(tmp_path)
