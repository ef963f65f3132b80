"""The pieces of the streaming render: fences, bundles, modes and the redraw throttle."""

from __future__ import annotations

from IPython.core.displaypub import CapturingDisplayPublisher, DisplayPublisher

from nbchat.notebook.render import (
    FINAL,
    LIVE,
    PRINT,
    AnswerView,
    answer_bundle,
    close_open_fence,
    error_bundle,
    footer_bundle,
    output_mode,
)
from notebook_helpers import RecordingPublisher


class Shell:
    """The one attribute of a shell that rendering uses."""

    def __init__(self, publisher):
        self.display_pub = publisher


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


def test_an_unfinished_code_fence_is_closed_while_streaming():
    assert close_open_fence("Here:\n```python\nprint(1)") == "Here:\n```python\nprint(1)\n```"
    assert close_open_fence("a\n```\nx\n```\nb") == "a\n```\nx\n```\nb"
    assert close_open_fence("~~~~\ncode\n") == "~~~~\ncode\n~~~~"
    assert close_open_fence("````\n```\ninner") == "````\n```\ninner\n````"
    assert answer_bundle("```\nx", streaming=True) == {"text/markdown": "```\nx\n```"}
    assert answer_bundle("```\nx")["text/plain"] == "```\nx"
    assert answer_bundle("```\nx")["text/markdown"] == "```\nx"


def test_footer_and_error_bundles_escape_html_and_have_a_text_twin():
    bundle = footer_bundle("model <b> · prompt 10 tok", "stopped: <script>")
    assert "&lt;b&gt;" in bundle["text/html"] and "&lt;script&gt;" in bundle["text/html"]
    assert bundle["text/plain"] == "⚠ stopped: <script>\nmodel <b> · prompt 10 tok"
    error = error_bundle("Cannot reach the server: start it with `%chat engine start`.")
    assert error["text/plain"].startswith("⚠ Cannot reach")
    assert "nbchat-problem" in error["text/html"] and "Traceback" not in error["text/html"]


def test_the_mode_follows_the_display_publisher():
    assert output_mode(Shell(DisplayPublisher())) == PRINT
    assert output_mode(Shell(CapturingDisplayPublisher())) == FINAL
    assert output_mode(Shell(RecordingPublisher())) == LIVE


def test_live_redraws_wait_for_the_interval_and_the_end_draws_everything():
    publisher, clock = RecordingPublisher(), Clock()
    view = AnswerView(Shell(publisher), 0.5, clock=clock)
    view.start()
    for piece in ["a", "b", "c"]:
        clock.now += 0.1
        view.add(piece)
    assert publisher.updates() == []
    clock.now += 0.3
    view.add("d")
    assert [u.data["text/markdown"] for u in publisher.updates()] == ["abcd"]
    view.add("e")
    view.finish()
    assert [u.data["text/markdown"] for u in publisher.updates()] == ["abcd", "abcde"]
    assert publisher.updates()[-1].data["text/plain"] == "abcde"
    assert {r.display_id for r in publisher.records} == {view.display_id}
    assert publisher.records[0].data["text/plain"] == "…"


def test_an_empty_answer_clears_the_placeholder():
    publisher = RecordingPublisher()
    view = AnswerView(Shell(publisher), 0.05)
    view.start()
    view.finish()
    assert publisher.final_states() == [{"text/plain": ""}]


def test_printing_mode_writes_pieces_as_they_come(capsys):
    view = AnswerView(Shell(DisplayPublisher()), 0.05)
    view.start()
    view.add("Hello")
    assert capsys.readouterr().out == "Hello"
    view.add(" world")
    view.finish()
    view.footer("model · 2 new tok", "stopped early")
    assert capsys.readouterr().out == " world\n⚠ stopped early\nmodel · 2 new tok\n"
