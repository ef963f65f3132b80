import pytest

from nbchat.core.turn import TokenReport, TurnResult
from nbchat.notebook.footer import footer_text

REPORT = TokenReport(
    system_tokens=0, history_tokens=0, history_turns=0, earlier_files=(), attachments=(),
    recall_tokens=0, question_tokens=0, total_tokens=0, window_tokens=0, max_tokens=0,
    attachment_budget=0, exact=False, tokenizer="",
)


def result(**changes):
    base = dict(session_id="s", message_id=1, text="hi", status="complete", finish_reason="stop",
                usage={}, timings={}, error_kind=None, error_message=None, report=REPORT)
    base.update(changes)
    return TurnResult(**base)


@pytest.mark.parametrize(("cost", "shown"), [
    (0.000021, "$0.000021"), (0.0012, "$0.0012"), (0.5, "$0.5000"), (12.5, "$12.50"),
])
def test_the_footer_shows_small_costs_with_their_significant_digits(cost, shown):
    assert footer_text(result(usage={"cost": cost}), "m").endswith(shown)


def test_the_footer_says_how_much_of_the_prompt_came_from_the_cache():
    line = footer_text(result(timings={"prompt_n": 14, "cache_n": 3398, "predicted_n": 96,
                                       "predicted_per_second": 45.2}), "gemma")
    assert line == "gemma · prompt 3,412 tok (3,398 cached, 14 new) · 96 new tok · 45.2 tok/s"


def test_a_partial_answer_is_marked_in_the_footer():
    line = footer_text(result(status="partial", error_kind="interrupted"), "m")
    assert "partial answer (interrupted; kept as received)" in line
