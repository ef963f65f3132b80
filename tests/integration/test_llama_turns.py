"""Turns through the public API against the real local llama.cpp server."""

from __future__ import annotations

import os
import signal
import threading

import pytest

import nbchat
import nbchat.api
from nbchat.api import ChatClient
from nbchat.core.errors import BackendUnreachable
from nbchat.core.settings import Settings
from nbchat.core.sqlite_store import SqliteStore as Store
from nbchat.core.tokens import EstimateCounter
from nbchat.core.turn import TurnResult


def client_for(url: str, tmp_path, **changes) -> ChatClient:
    settings = Settings(backend="llama", base_url=url, db_path=tmp_path / "db.sqlite",
                        max_tokens=24, temperature=0.0).replace(**changes)
    return ChatClient(settings)


def send(client: ChatClient, prompt: str, files=(), **kw) -> TurnResult:
    events = list(client.run(client.prepare(prompt, list(files), **kw)))
    assert isinstance(events[-1], TurnResult)
    return events[-1]


def prose(words: int) -> str:
    base = ("The river delta report describes sediment, rainfall and crop yields "
            "across eleven districts over the last decade. ").split()
    return " ".join(base[i % len(base)] for i in range(words))


def test_a_streamed_answer_is_stored_with_usage_and_timings(llama_url, tmp_path):
    client = client_for(llama_url, tmp_path)
    prepared = client.prepare("Say hello")
    assert prepared.report.parts_exact  # counted by the server's own tokenizer
    deltas = [e for e in client.run(prepared) if not isinstance(e, TurnResult)]
    assert deltas, "no streamed events arrived"
    stored = Store(tmp_path / "db.sqlite")
    answer = stored.messages(client.session_id)[-1]
    assert answer.role == "assistant" and answer.status == "complete" and answer.content
    assert answer.timings["prompt_n"] > 0 and answer.timings["predicted_n"] > 0
    assert answer.usage["completion_tokens"] == answer.timings["predicted_n"]


def test_the_second_turn_reuses_the_cache_for_the_first_turns_attachment(llama_url, tmp_path):
    client = client_for(llama_url, tmp_path)
    report = tmp_path / "report.txt"
    report.write_text(prose(2400), encoding="utf-8")
    first = send(client, "Summarise the report in one line.", [report])
    assert first.timings["prompt_n"] > 2000  # the model really saw the file
    second = send(client, "And the rainfall?")
    assert second.timings["cache_n"] > 2000
    assert second.timings["prompt_n"] < 50


def test_exact_counts_match_the_servers_tokenizer_and_the_estimate_errs_high(llama_url, tmp_path):
    client = client_for(llama_url, tmp_path)
    counter = client.backend().token_counter()
    assert counter is not None
    samples = {
        "prose": prose(800),
        "code": open(os.path.join(os.path.dirname(__file__), __file__)).read(),
        "numbers": "\n".join(f"{i},{i * 3.14:.2f},2024-01-{i % 28 + 1:02d}" for i in range(200)),
    }
    for name, text in samples.items():
        exact = counter.count(text)
        estimate = EstimateCounter().count(text)
        assert 0.95 * exact <= estimate <= 1.35 * exact, (name, estimate, exact)


def test_an_over_long_prompt_gives_the_context_error_with_both_numbers(llama_url, tmp_path):
    # Claim a larger window than the server has, so the prompt passes our budget check.
    client = client_for(llama_url, tmp_path, context_window=64_000)
    result = send(client, prose(9000))
    assert result.status == "error" and result.error_kind == "context"
    assert "8192" in result.error_message.replace(",", "")


def test_a_dead_port_says_the_server_is_not_running_and_stores_nothing(tmp_path):
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    client = client_for(f"http://127.0.0.1:{port}", tmp_path)
    prepared = client.prepare("hello?")
    # No tokenizer: the estimate stands in, for the parts and the total.
    assert not prepared.report.parts_exact and not prepared.report.exact
    with pytest.raises(BackendUnreachable) as caught:
        list(client.run(prepared))
    assert "not running" in str(caught.value) or "No llama-server" in str(caught.value)
    assert "engine start" in str(caught.value)
    assert client.store.list_sessions() == []


def test_killing_the_server_mid_stream_keeps_the_partial_answer(own_llama, tmp_path):
    client = client_for(own_llama.url, tmp_path, max_tokens=2000)
    received: list[str] = []
    result = None
    killer = None
    for event in client.run(client.prepare("Write a very long story about a lighthouse keeper.")):
        if isinstance(event, TurnResult):
            result = event
        elif hasattr(event, "text"):
            received.append(event.text)
            if len(received) == 5 and killer is None:
                killer = threading.Thread(target=os.kill, args=(own_llama.pid, signal.SIGKILL))
                killer.start()
    assert result is not None
    assert result.status == "partial"
    assert result.text == "".join(received) and len(received) >= 5
    stored = client.store.messages(result.session_id)[-1]
    assert (stored.status, stored.content) == ("partial", result.text)
    assert stored.error_kind in {"truncated", "upstream", "unreachable", "generic"}


def test_short_follow_ups_evaluate_only_the_new_message(llama_url, tmp_path):
    # Answers stop at max_tokens, mid-sentence: the stored text is still an exact prefix,
    # and the sliding-window layers keep their full cache (swa_full), so a follow-up
    # costs its own tokens plus the template's few.
    client = client_for(llama_url, tmp_path, max_tokens=30)
    send(client, "Say hello")
    evaluated = [send(client, question).timings["prompt_n"]
                 for question in ("And again", "One more time, please")]
    assert all(n <= 40 for n in evaluated), evaluated


def test_the_dry_run_total_is_what_the_server_evaluates_on_the_next_turn(
    llama_url, tmp_path, monkeypatch
):
    """The dry run's total is the whole templated prompt as llama-server counts it, so it
    equals the next turn's ``prompt_n + cache_n`` (the parts' sum was off by 1 to 5)."""
    monkeypatch.setenv("NBCHAT_BACKEND", "llama")
    monkeypatch.setenv("NBCHAT_BASE_URL", llama_url)
    monkeypatch.setattr(nbchat.api, "_DEFAULT", None)
    notes = tmp_path / "site-notes.txt"
    notes.write_text(prose(300), encoding="utf-8")
    table = tmp_path / "rainfall.csv"
    table.write_text("district,rainfall_mm\nNorth,812\nDelta,1204\nHills,967\n", encoding="utf-8")
    # As in %%chat cells: questions end with a newline, which the template trims.
    turns = [
        ("Read these site notes; what do they cover?\n", [notes]),
        ("Which districts are named?\n", []),
        ("  Now compare with this table, in one line.\n\n", [table]),
        ("Thanks. Anything about crop yields?\n", []),
    ]
    dry_totals: list[int] = []
    evaluated: list[int] = []
    reports = []
    try:
        for question, files in turns:
            dry = nbchat.dry_run(question, files, max_tokens=24)
            result = nbchat.chat(question, files, max_tokens=24, temperature=0.0)
            assert result.status == "complete", result.error_message
            dry_totals.append(dry.report.total_tokens)
            evaluated.append(result.timings["prompt_n"] + result.timings["cache_n"])
            reports.append((dry.report, dry.messages))
        assert dry_totals == evaluated
        backend = nbchat.api.default_client().backend()
        for (report, messages), total in zip(reports, evaluated):
            assert report.exact and report.parts_exact
            assert f"total {total:,} of" in report.as_text()
            assert "exact: the whole prompt" in report.as_text()
            parts_sum = sum(backend.count_tokens(m["content"]) for m in messages)
            assert parts_sum != total  # the template adds tokens between the parts
    finally:
        nbchat.api.default_client().close()
