from llmaug.data import Example, Provenance
from llmaug.filters.quality import QualityFilter


def synthetic(text: str, label: str = "LOC") -> Example:
    return Example.create(text, label, provenance=Provenance(origin="synthetic", method="test", round=1, parent_ids=["p"], raw_output=text))


EXISTING = [Example.create("Where is the Eiffel Tower located in the city of Paris ?", "LOC")]


def test_each_kind_of_garbage_is_rejected_with_its_reason():
    candidates = [
        synthetic(""),
        synthetic("Hi?"),
        synthetic("x" * 700),
        synthetic("A fine question about rivers ?", label="FOOD"),
        synthetic("Where is the Eiffel Tower located in the city of Paris ?"),
        synthetic("where is the eiffel tower located in the city of paris"),
        synthetic("Where is the Eiffel Tower located in the city of Paris today ?"),
        synthetic("Write 1 new question that also belongs to the category"),
        synthetic("Which river flows through the city of Cairo ?"),
    ]
    instructions = {c.id: 'Write 1 new question that also belongs to the category "LOC". Reply with the question only.' for c in candidates}
    accepted, rejected = QualityFilter().apply(candidates, EXISTING, ["LOC", "NUM"], instructions)
    assert [e.text for e in accepted] == ["Which river flows through the city of Cairo ?"]
    reasons = [r.reason.split(" (")[0] for r in rejected]
    assert reasons == [
        "empty", "too short", "too long", "label 'FOOD' not in the label set", "exact duplicate", "exact duplicate",
        "near duplicate", "echo of the prompt instructions",
    ]
    assert all(r.parent_ids == ["p"] and r.round == 1 for r in rejected)


def test_duplicates_within_one_batch_are_caught():
    batch = [synthetic("Which mountain range crosses Nepal and Tibet ?"), synthetic("Which mountain range crosses Nepal and Tibet ?")]
    accepted, rejected = QualityFilter().apply(batch, [], ["LOC"])
    assert len(accepted) == 1 and rejected[0].reason == "exact duplicate"
