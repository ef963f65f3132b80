from hypothesis import given, strategies as st

from nbchat.core.references import find_references


def names(text):
    return [r.name for r in find_references(text)]


def test_at_and_bracketed_references_are_found_in_order():
    assert names("Compare @report.pdf with [Attached: Q3 data.xlsx] please") == [
        "report.pdf",
        "Q3 data.xlsx",
    ]


def test_email_addresses_are_not_references():
    assert names("write to ada@example.com or bob@lab.org.csv") == []


def test_decorators_and_css_at_rules_without_a_file_extension_are_untouched():
    assert names("@pytest.fixture\ndef f(): ...\n@media screen { }") == []


def test_a_reference_at_the_end_of_a_sentence_drops_the_full_stop():
    assert names("Summarise @notes.md.") == ["notes.md"]


@given(st.text(alphabet=st.characters(blacklist_characters="@["), max_size=200))
def test_text_without_at_or_brackets_has_no_references(text):
    assert find_references(text) == []
