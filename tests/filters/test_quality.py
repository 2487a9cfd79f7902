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


def test_question_form_is_learnt_from_the_seed_and_cuts_chatter():
    seed = [Example.create("Where is Kyoto ?", "LOC"), Example.create("How many legs has a spider ?", "NUM")]
    quality = QualityFilter().fit(seed)
    assert quality.question_form is True
    chatty = synthetic('Sure! The question is: "Which river runs through Cairo?" I hope it helps.')
    plain = synthetic("Rivers are long and wet.")
    accepted, rejected = quality.apply([chatty, plain], seed, ["LOC", "NUM"])
    assert [e.text for e in accepted] == ["Which river runs through Cairo?"]
    assert accepted[0].provenance.raw_output == chatty.provenance.raw_output
    assert [r.reason for r in rejected] == ["not a question"]
    statements = [Example.create("a fine film", "positive"), Example.create("a dull film", "negative")]
    assert QualityFilter().fit(statements).question_form is False


def test_centroid_check_drops_a_candidate_whose_label_clearly_does_not_fit():
    seed = [
        Example.create("Where is the capital city of France located ?", "LOC"),
        Example.create("In which country is the city of Kyoto ?", "LOC"),
        Example.create("How many legs does a spider have ?", "NUM"),
        Example.create("How many minutes are there in one hour ?", "NUM"),
    ]
    quality = QualityFilter(centroid_top=1).fit(seed)
    fits = synthetic("In which country is the city of Lyon located ?", "LOC")
    misfit = synthetic("How many seconds are there in one day ?", "LOC")
    accepted, rejected = quality.apply([fits, misfit], seed, ["LOC", "NUM"])
    assert [e.text for e in accepted] == [fits.text]
    assert rejected[0].reason == "label does not fit (nearest label NUM)"


def test_pairs_are_checked_on_their_second_text_which_methods_write():
    premise = "A long real premise that the method keeps from its parent. " * 12  # over max_chars on its own
    existing = [Example.create(premise, "entailment", text_pair="The premise is long.")]
    candidates = [
        Example.create(premise, "entailment", text_pair="The premise is long."),
        Example.create(premise, "entailment", text_pair="Somebody wrote a different hypothesis here."),
        Example.create(premise, "entailment", text_pair="Short"),
    ]
    accepted, rejected = QualityFilter().apply(candidates, existing, ["entailment", "not_entailment"])
    assert [e.text_pair for e in accepted] == ["Somebody wrote a different hypothesis here."]
    assert [r.reason.split(" (")[0] for r in rejected] == ["exact duplicate", "too short"]


def test_assistant_chatter_is_rejected_but_ordinary_questions_pass():
    chatter = [
        "I'm not familiar enough with a question to provide a reply. Can you please provide more details?",
        "I'd be happy to help with that. What is an entity?",
        "What is the first thing that your AI assistant says?",
        "Here is a new question: where is Lyon?",
    ]
    fine = ["Who said I am the greatest?", "What does an AI do in a chess engine?", "Where can you see the northern lights?"]
    accepted, rejected = QualityFilter().apply([synthetic(t) for t in chatter + fine], [], ["LOC"])
    assert [e.text for e in accepted] == fine
    assert {r.reason for r in rejected} == {"assistant chatter"}
