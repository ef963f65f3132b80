"""Large files in small windows: the passages a question needs, on every turn, with the
prompt's prefix kept between compactions (issue 17). Real stores, real files, the turn
pipeline end to end with an in-process backend."""

from __future__ import annotations

import pytest

from nbchat.core.attachments import path_spec
from nbchat.core.extract import EXTRACTOR_VERSION
from nbchat.core.settings import Settings
from nbchat.core.tokens import CachedCounter, EstimateCounter
from nbchat.core.turn import TurnResult, prepare_turn, run_turn

from filegen import make_text_pdf
from inprocess_backend import ScriptedBackend
from needles import needle_document
from rawsql import query

WINDOW = 8192
ANSWER = "From the passages above, the answer is given in the document. " * 4


@pytest.fixture
def report(tmp_path):
    document = needle_document()
    path = tmp_path / "report.txt"
    path.write_text(document.text, encoding="utf-8")
    return document, path


@pytest.fixture
def default_settings(settings):
    """The default max_tokens (the core fixture lowers it)."""
    return settings.replace(max_tokens=Settings().max_tokens)


def send(store, settings, backend, question, specs=(), session_id=None):
    session = store.get_session(session_id) if session_id else None
    prepared = prepare_turn(
        store, settings, question, list(specs), session=session, new_session=None,
        counter=CachedCounter(EstimateCounter(), store), window_tokens=WINDOW,
    )
    result = list(run_turn(store, backend, prepared))[-1]
    assert isinstance(result, TurnResult)
    return prepared, result


def in_prompt(fact, messages):
    return any(fact.sentence.rstrip(".") in m["content"] for m in messages)


def test_a_single_question_gets_the_passage_that_answers_it(store, default_settings, report):
    document, path = report
    found = []
    for fact in document.facts:  # a fresh session per question, the file attached
        prepared, _ = send(store, default_settings, ScriptedBackend(ANSWER), fact.question,
                           [path_spec(path)])
        assert prepared.report.total_tokens <= WINDOW - default_settings.max_tokens
        found.append(in_prompt(fact, prepared.messages))
    assert sum(found) >= 9, found
    part = prepared.report.attachments[0]
    assert part.truncated and part.passages[0].endswith("(head)")
    assert any(document.facts[-1].keyword.lower() in p for p in part.passages)


def test_later_turns_bring_in_the_passages_they_need_and_keep_the_prefix(
    store, default_settings, report
):
    document, path = report
    backend = ScriptedBackend(ANSWER)
    _, result = send(store, default_settings, backend, document.facts[0].question, [path_spec(path)])
    found, compactions = [], 0
    for fact in document.facts[1:6]:
        prepared, result = send(store, default_settings, backend, fact.question,
                                session_id=result.session_id)
        found.append(in_prompt(fact, prepared.messages))
        compactions += prepared.report.compacted
        before, after = backend.requests[-2], backend.requests[-1]
        if not prepared.report.compacted:
            assert after[: len(before)] == before  # earlier messages byte for byte
        # Brought-in passages are in the new message, never in an earlier one.
        for part in prepared.report.brought_in:
            assert f"From {part.name}, " in after[-1]["content"]
    assert sum(found) >= 4, found
    assert compactions <= 1


def test_a_long_conversation_compacts_rarely_in_one_large_step(store, default_settings, report):
    document, path = report
    backend = ScriptedBackend(ANSWER * 3)
    _, result = send(store, default_settings, backend, document.facts[0].question, [path_spec(path)])
    compacted = []
    for fact in [*document.facts[1:], *document.facts[1:]][:14]:
        prepared, result = send(store, default_settings, backend, fact.question,
                                session_id=result.session_id)
        if prepared.report.compacted:
            compacted.append(prepared.report.dropped_turns)
            assert prepared.messages[1]["content"].startswith("Files shared earlier")
            assert "=== BEGIN FILE report.txt" in prepared.messages[1]["content"]
            assert any("History compacted: " in n and "0 oldest" not in n
                       for n in prepared.report.notices)
        else:
            before, after = backend.requests[-2], backend.requests[-1]
            assert after[: len(before)] == before
        assert prepared.report.total_tokens <= WINDOW - default_settings.max_tokens
        assert in_prompt(fact, prepared.messages), fact.keyword
    assert 1 <= len(compacted) <= 2, compacted
    assert all(dropped >= 3 for dropped in compacted), compacted


def test_a_passage_already_in_the_conversation_is_not_brought_in_again(
    store, default_settings, report
):
    document, path = report
    backend = ScriptedBackend(ANSWER)
    _, result = send(store, default_settings, backend, "Summarise it.", [path_spec(path)])
    fact = document.facts[6]
    first, result = send(store, default_settings, backend, fact.question, session_id=result.session_id)
    assert first.report.brought_in and in_prompt(fact, [first.messages[-1]])
    again, _ = send(store, default_settings, backend, fact.question, session_id=result.session_id)
    assert not again.report.brought_in
    assert fact.sentence.rstrip(".") not in again.messages[-1]["content"]
    assert in_prompt(fact, again.messages)  # it is still there, in the earlier message


def test_a_large_pdf_is_sent_as_head_and_labelled_pages_with_the_note(
    store, default_settings, tmp_path
):
    pages = [f"Chapter {n}. " + "The committee met and reviewed the plans. " * 60
             for n in range(1, 61)]
    pages[46] = "The Sorrowby tunnel is 4,870 metres long. " + pages[46]
    pages[29] = "The Wendlow bridge spans 312 metres. " + pages[29]
    path = make_text_pdf(tmp_path, "report.pdf", pages)
    prepared, result = send(store, default_settings, ScriptedBackend(ANSWER),
                            "How long is the Sorrowby tunnel?", [path_spec(path)])
    sent = prepared.messages[-1]["content"]
    assert "[page 1]" in sent and "[page 47]" in sent and "[...]" in sent
    assert "[page 47]\nThe Sorrowby tunnel is 4,870 metres long." in sent
    assert "--- page" not in sent  # the label says which page; the page's marker is left out
    notes = [n for n in prepared.report.notices if n.startswith("report.pdf: pages 1")]
    assert len(notes) == 1, prepared.report.notices
    assert ", 47, 60 of 60 included (~" in notes[0]  # head, the passage, the end
    assert notes[0].endswith("tokens); ask about other parts and they will be brought in")
    assert f"[{notes[0]}]" in sent
    assert "page 47 (matched: long, sorrowby, tunnel)" in prepared.report.attachments[0].passages
    assert "page 60 (end)" in prepared.report.attachments[0].passages
    # Which chunks the message sent is stored with it.
    sha = prepared.attachments[0].item.sha256
    recorded = store.sent_chunks(result.session_id)[sha]
    assert recorded and len(recorded) < len(query(
        store, "SELECT idx FROM file_chunks WHERE sha256 = ? AND extractor_version = ?",
        (sha, EXTRACTOR_VERSION)))
    # A later turn brings a page in under its own label, without the page's marker.
    later, _ = send(store, default_settings, ScriptedBackend(ANSWER),
                    "How long is the Wendlow bridge?", session_id=result.session_id)
    asked = later.messages[-1]["content"]
    assert "From report.pdf, page 30:\nThe Wendlow bridge spans 312 metres." in asked
    assert "--- page" not in asked


def test_a_general_question_gets_the_files_end_after_its_head(store, default_settings, tmp_path):
    lines = [f"Entry {n}: the sensor read nominal values all day." for n in range(1, 3001)]
    lines[-1] = "Conclusion: the pump failed on day 3000 after the seal cracked."
    path = tmp_path / "log.txt"
    path.write_text("\n".join(lines), encoding="utf-8")
    prepared, _ = send(store, default_settings, ScriptedBackend(ANSWER),
                       "What does this show?", [path_spec(path)])
    sent = prepared.messages[-1]["content"]
    assert sent.index("Entry 1:") < sent.index("[...]") < sent.index("Conclusion: the pump failed")
    assert "Entry 1500:" not in sent
    part = prepared.report.attachments[0]
    assert part.truncated and part.passages[-1].endswith("(end)"), part.passages


def test_words_most_of_the_file_holds_choose_no_passage_in_any_language(store, default_settings, tmp_path):
    topics = ["Stetigkeit", "Kompaktheit", "Zusammenhang", "Homotopie", "Mannigfaltigkeit"]
    paragraphs = [
        f"Abschnitt {n}. Die {topics[n % 5]} ist ein Begriff der Vorlesung, und ein Beispiel "
        f"ist {n * 3} mal ein Kreis. " * 12 for n in range(60)
    ]
    paragraphs[41] = "Ein Hausdorff-Raum ist ein Raum, in dem je zwei Punkte getrennt sind. " * 3
    paragraphs[52] = "Eine kompakte Menge ist ein Ort, dessen offene Überdeckungen endlich sind. " * 3
    path = tmp_path / "skript.txt"
    path.write_text("\n\n".join(paragraphs), encoding="utf-8")
    prepared, result = send(store, default_settings, ScriptedBackend(ANSWER),
                            "Was ist ein Hausdorff-Raum?", [path_spec(path)])
    part = prepared.report.attachments[0]
    matched = [p for p in part.passages if "matched" in p]
    # "ist" and "ein" are in every chunk: they choose nothing; "hausdorff" does.
    assert matched and all("ist" not in p and "ein" not in p for p in matched), part.passages
    assert any("hausdorff" in p for p in matched)
    assert "je zwei Punkte getrennt" in prepared.messages[-1]["content"]
    # A later turn brings in the chunk with the question's rare word, not the common ones.
    later, _ = send(store, default_settings, ScriptedBackend(ANSWER),
                    "Was ist ein kompakte Menge?", session_id=result.session_id)
    [brought] = later.report.brought_in
    assert brought.passages and all("kompakte" in p for p in brought.passages), brought
    assert all("ist" not in p and "ein" not in p for p in brought.passages), brought
    assert "endlich sind" in later.messages[-1]["content"]
    assert later.messages[-1]["content"].count("From skript.txt") == 1


def test_a_file_is_indexed_once_per_content_and_extractor_version(store, default_settings, report):
    document, path = report
    copy = path.with_name("copy.txt")
    copy.write_text(path.read_text(encoding="utf-8"), encoding="utf-8")
    sql = "SELECT count(*), count(DISTINCT idx) FROM file_chunks WHERE sha256 = ?"
    prepared, _ = send(store, default_settings, ScriptedBackend(), "Where is Oxhollow?",
                       [path_spec(path)])
    sha = prepared.attachments[0].item.sha256
    rows, distinct = query(store, sql, (sha,))[0]
    assert rows == distinct > 100
    assert store.has_chunks(sha, EXTRACTOR_VERSION)
    ranked = store.rank_chunks(sha, EXTRACTOR_VERSION, ["oxhollow", "warehouse"], 5)
    start, stop = query(store, "SELECT start, stop FROM file_chunks WHERE sha256 = ? AND idx = ?",
                        (sha, ranked[0][0]))[0]
    extract = store.cached_extract(sha, EXTRACTOR_VERSION)
    assert extract is not None and "Oxhollow warehouse" in extract.text[start:stop]
    # The same content again, by another path and in another session: no new rows.
    send(store, default_settings, ScriptedBackend(), "And the Sorrowby tunnel?", [path_spec(copy)])
    assert query(store, sql, (sha,))[0] == (rows, distinct)


def test_attaching_the_large_file_again_on_each_turn_brings_in_passages_not_its_head(
    store, default_settings, report
):
    document, path = report
    backend = ScriptedBackend(ANSWER)
    first, result = send(store, default_settings, backend, document.facts[0].question,
                         [path_spec(path)])
    head = first.messages[-1]["content"].split("[...]")[0]
    for fact in document.facts[1:4]:  # the cell keeps its -f report.txt
        prepared, result = send(store, default_settings, backend, fact.question,
                                [path_spec(path)], session_id=result.session_id)
        current = prepared.messages[-1]["content"]
        assert head not in current
        assert "parts of it are above, and the passages this question needs follow" in current
        assert fact.sentence.rstrip(".") in current
        assert not prepared.report.compacted
        before, after = backend.requests[-2], backend.requests[-1]
        assert after[: len(before)] == before
