"""Stream semantics: payloads to events, and bytes to events through httpx-sse."""

from __future__ import annotations

import json

import httpx
from hypothesis import given, settings as hsettings, strategies as st

from nbchat.backends.classify import ErrorContext
from nbchat.backends.openai_compat import OpenAICompatBackend
from nbchat.backends.sse import StreamDecoder, decode_payloads, events_from_completion
from nbchat.core.events import Done, StreamError, TextDelta, Usage

from sse_server import delta_chunk, finish_chunk, llama_timings, usage_chunk

CONTEXT = ErrorContext(backend="openai", server="the server at http://test", model="m")


def payloads(*chunks):
    return [c if isinstance(c, str) else json.dumps(c) for c in chunks]


def decode(*chunks):
    return list(decode_payloads(payloads(*chunks), CONTEXT))


def text_of(events):
    return "".join(e.text for e in events if isinstance(e, TextDelta))


def test_done_mark_ends_the_stream_and_later_payloads_are_ignored():
    events = decode(delta_chunk("Hi"), "[DONE]", delta_chunk(" late"))
    assert events == [TextDelta("Hi"), Done("stop")]


def test_usage_after_the_finish_is_kept_and_ends_the_stream():
    events = decode(
        delta_chunk("Hello"),
        finish_chunk("length"),
        usage_chunk(10, 3, cached_tokens=4, cost=0.002, timings=llama_timings(6, 4, 3)),
        "[DONE]",
    )
    assert events[0] == TextDelta("Hello")
    usage = events[1]
    assert isinstance(usage, Usage)
    assert (usage.prompt_tokens, usage.completion_tokens, usage.cached_tokens) == (10, 3, 4)
    assert usage.cost == 0.002
    assert usage.timings["prompt_n"] == 6 and usage.timings["predicted_per_second"] == 47.6
    assert events[2:] == [Done("length")]


def test_usage_inside_the_finish_chunk_ends_the_stream_at_once():
    finish = finish_chunk("stop")
    finish["usage"] = {"prompt_tokens": 5, "completion_tokens": 1}
    decoder = StreamDecoder(CONTEXT)
    events = decoder.feed(json.dumps(delta_chunk("x"))) + decoder.feed(json.dumps(finish))
    assert decoder.finished
    assert events == [TextDelta("x"), Usage(prompt_tokens=5, completion_tokens=1), Done("stop")]


def test_a_finish_without_done_mark_is_a_normal_end():
    events = decode(delta_chunk("All"), finish_chunk("stop"))
    assert events == [TextDelta("All"), Done("stop")]


def test_end_of_body_without_finish_is_truncated_and_keeps_the_text():
    events = decode(delta_chunk("Part"), delta_chunk("ial"))
    assert text_of(events) == "Partial"
    assert isinstance(events[-1], StreamError) and events[-1].kind == "truncated"


def test_llama_error_object_mid_stream_is_classified_with_both_numbers():
    error = {
        "error": {
            "code": 400,
            "message": "the request exceeds the available context size",
            "type": "exceed_context_size_error",
            "n_prompt_tokens": 9100,
            "n_ctx": 8192,
        }
    }
    events = decode(delta_chunk("So far"), error)
    assert events[0] == TextDelta("So far")
    assert events[-1].kind == "context"
    assert "9100" in events[-1].message and "8192" in events[-1].message


def test_openrouter_finish_reason_error_is_classified():
    chunk = delta_chunk("")
    chunk["choices"][0]["finish_reason"] = "error"
    chunk["error"] = {"code": 502, "message": "Provider returned error"}
    events = decode(delta_chunk("Half an"), chunk)
    assert events[0] == TextDelta("Half an")
    assert events[-1].kind == "upstream"
    assert "Provider returned error" in events[-1].message


def test_finish_reason_error_without_error_object_still_fails():
    events = decode(delta_chunk("a"), finish_chunk("error"))
    assert isinstance(events[-1], StreamError)


def test_usage_is_emitted_before_a_stream_error_when_known():
    bad = {"error": {"message": "boom"}}
    events = decode(delta_chunk("a"), usage_chunk(3, 1), bad)
    assert [type(e) for e in events] == [TextDelta, Usage, StreamError]
    assert events[-1].kind == "generic"


def test_a_chunk_that_is_not_json_is_an_error_and_keeps_the_text():
    events = decode(delta_chunk("kept"), "{not json")
    assert events[0] == TextDelta("kept")
    assert events[-1].kind == "generic"


def test_role_only_and_empty_chunks_add_no_text():
    role_only = delta_chunk("")
    role_only["choices"][0]["delta"] = {"role": "assistant"}
    events = decode(role_only, {"choices": []}, "", delta_chunk("x"), "[DONE]")
    assert events == [TextDelta("x"), Done("stop")]


def test_only_the_first_choice_is_read():
    other = delta_chunk("other")
    other["choices"][0]["index"] = 1
    assert text_of(decode(delta_chunk("mine"), other, "[DONE]")) == "mine"


def test_timings_without_usage_give_counts_from_the_timings():
    chunk = finish_chunk("stop")
    chunk["timings"] = llama_timings(prompt_n=7, cache_n=100, predicted_n=9)
    usage = decode(delta_chunk("x"), chunk)[1]
    assert (usage.prompt_tokens, usage.cached_tokens, usage.completion_tokens) == (107, 100, 9)


def test_a_named_error_event_is_an_error():
    events = list(decode_payloads([("error", json.dumps({"message": "overloaded"}))], CONTEXT))
    assert isinstance(events[-1], StreamError)


def test_a_non_streamed_completion_becomes_the_same_events():
    body = {
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "Whole"},
                     "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 4, "completion_tokens": 1},
    }
    assert events_from_completion(body, CONTEXT) == [
        TextDelta("Whole"), Usage(prompt_tokens=4, completion_tokens=1), Done("stop")
    ]


# -- property: any stream, any chunking of its bytes ----------------------------------------

texts = st.text(
    alphabet=st.characters(codec="utf-8", categories=None, exclude_categories=("Cs",)),
    max_size=12,
).map(lambda t: t + "\u2028\u0085" if len(t) % 5 == 0 else t)

streams = st.fixed_dictionaries(
    {
        "pieces": st.lists(texts, max_size=6),
        "ending": st.sampled_from(["finish_then_usage", "usage_in_finish", "finish_only",
                                   "truncated", "error"]),
        "done": st.booleans(),
        "line_ending": st.sampled_from(["\n", "\r\n", "\r"]),
        "multiline": st.booleans(),
        "comment_every": st.integers(min_value=0, max_value=3),
    }
)


def stream_payloads(spec):
    chunks = [delta_chunk(piece) for piece in spec["pieces"]]
    ending = spec["ending"]
    if ending == "finish_then_usage":
        chunks += [finish_chunk("stop"), usage_chunk(9, len(spec["pieces"]), timings=llama_timings())]
    elif ending == "usage_in_finish":
        finish = finish_chunk("length")
        finish["usage"] = {"prompt_tokens": 2, "completion_tokens": 1, "cost": 0.5}
        chunks.append(finish)
    elif ending == "finish_only":
        chunks.append(finish_chunk("stop"))
    elif ending == "error":
        chunks.append({"error": {"code": 429, "message": "slow down"}})
    if spec["done"] and ending != "truncated":
        chunks.append("[DONE]")
    return chunks


def stream_bytes(spec):
    le = spec["line_ending"]
    out = []
    for index, chunk in enumerate(stream_payloads(spec)):
        if spec["comment_every"] and index % spec["comment_every"] == 0:
            out.append(f": OPENROUTER PROCESSING{le}{le}")
        data = chunk if isinstance(chunk, str) else json.dumps(
            chunk, ensure_ascii=False, indent=1 if spec["multiline"] else None
        )
        out.append("".join(f"data: {line}{le}" for line in data.split("\n")) + le)
    return "".join(out).encode("utf-8")


def events_over_http(body_pieces):
    def handler(request):
        return httpx.Response(
            200, headers={"content-type": "text/event-stream"}, content=iter(body_pieces)
        )

    backend = OpenAICompatBackend("http://test/v1", transport=httpx.MockTransport(handler))
    try:
        return list(backend.stream([{"role": "user", "content": "q"}], model="m"))
    finally:
        backend.close()


@hsettings(max_examples=150, deadline=None)
@given(spec=streams, cuts=st.lists(st.integers(min_value=0, max_value=10_000), max_size=12))
def test_any_chunking_of_a_streams_bytes_gives_the_same_events(spec, cuts):
    body = stream_bytes(spec)
    points = sorted({c % (len(body) + 1) for c in cuts})
    pieces = [body[a:b] for a, b in zip([0, *points], [*points, len(body)]) if body[a:b]]
    whole = events_over_http([body])
    assert events_over_http(pieces) == whole
    # The wire decoding agrees with the pure decoding of the same payloads.
    expected = list(decode_payloads(
        [c if isinstance(c, str) else json.dumps(c) for c in stream_payloads(spec)], CONTEXT
    ))
    assert [type(e) for e in whole] == [type(e) for e in expected]
    assert text_of(whole) == "".join(spec["pieces"])
    last = whole[-1]
    if spec["ending"] == "truncated" or (spec["ending"] == "error"):
        assert isinstance(last, StreamError)
    else:
        assert isinstance(last, Done)
