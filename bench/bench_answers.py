"""Does the local model answer? Questions a user would ask, scored by their answers' words.

Each question goes through ``nbchat.chat`` (a new session each time, temperature 0) to a
local engine, as ``%%chat`` would send it. Four kinds, written before any model was run
and not tuned to one:

- **general** knowledge ("What is the capital of France?");
- **code**: small Python questions;
- **file**: questions about a short report the benchmark writes and attaches;
- **dataframe**: questions about a pandas DataFrame attached as nbchat's summary.

An answer counts when it holds every expected word (each may have alternatives), none
of the wrong values, and does not echo the prompt (the question repeated, a long stretch
of the attachment or of the system prompt copied out, chat-template or prompt-layout
markers). One row per model.

    python bench/bench_answers.py                      # both known models, fresh engines
    python bench/bench_answers.py --models smollm2-135m-instruct --show
    python bench/bench_answers.py --url http://127.0.0.1:8080 --label my-model
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from common import emit, median, print_table, scratch_dir

from nbchat.core.settings import Settings

SYSTEM_PROMPT = Settings().system_prompt

MAX_TOKENS = 64
ECHO_RUN_CHARS = 60
TEMPLATE_MARKERS = (
    "<|im_start|>", "<|im_end|>", "<start_of_turn>", "<end_of_turn>", "=== BEGIN ", "=== END ",
)

REPORT = """Field trial report: soil sensors at North Farm
Trial manager: Dana Whitfield
Inspection date: 14 March 2024
Site: plot B7, 2.4 hectares of winter wheat
Soil pH measured: 6.8
Sensors installed: 12. Sensors failing: 2 (units S4 and S9).
Average soil moisture: 31 percent
Budget spent so far: 4,750 euros of 6,000 euros
Next inspection: 2 May 2024
"""


def sales_frame() -> Any:
    import pandas as pd

    return pd.DataFrame({
        "region": ["north", "south", "east", "west"] * 3,
        "month": ["Jan"] * 4 + ["Feb"] * 4 + ["Mar"] * 4,
        "units": [30, 45, 28, 51, 33, 47, 25, 60, 38, 44, 31, 66],
        "revenue": [300.0, 450.0, 280.0, 510.0, 330.0, 470.0, 250.0, 600.0, 380.0, 440.0,
                    310.0, 660.0],
        "discount": [0.1, None, 0.05, None, 0.1, 0.0, None, 0.2, 0.1, 0.05, None, 0.15],
    })


@dataclass(frozen=True)
class Question:
    """``expect``: groups of alternatives, each group must match; ``wrong``: none may."""

    kind: str
    text: str
    expect: tuple[tuple[str, ...], ...]
    wrong: tuple[str, ...] = ()


def q(kind: str, text: str, *expect: str | tuple[str, ...], wrong: tuple[str, ...] = ()) -> Question:
    groups = tuple((e,) if isinstance(e, str) else e for e in expect)
    return Question(kind, text, groups, wrong)


QUESTIONS: list[Question] = [
    q("general", "What is the capital of France?", "Paris", wrong=("Lyon", "London", "Berlin")),
    q("general", "What is the chemical formula of water?", "H2O", wrong=("CO2", "H2O2")),
    q("general", "Who wrote Romeo and Juliet?", "Shakespeare", wrong=("Dickens", "Marlowe")),
    q("general", "How many days are there in a week?", ("7", "seven"), wrong=("5", "6", "8")),
    q("general", "What is the largest planet in our solar system?", "Jupiter"),
    q("general", "What is 12 times 12?", "144", wrong=("124", "122", "132")),
    q("general", "On which continent is Kenya?", "Africa", wrong=("Asia", "Europe")),
    q("general", "At what temperature in Celsius does water boil at sea level?", "100",
      wrong=("90", "50")),
    q("general", "Which gas do plants take from the air for photosynthesis?",
      ("carbon dioxide", "CO2")),
    q("code", "In Python, which built-in function gives the number of items in a list?", "len",
      wrong=("size()", "length()")),
    q("code", "How do I import pandas with its usual short name?", "import pandas as pd"),
    q("code", "Which Python keyword starts a function definition?", "def"),
    q("code", "How do I reverse a string s in Python?", ("[::-1]", "reversed")),
    q("code", "How do I add an item to the end of a Python list?", "append"),
    q("code", "Which standard Python module gives the current date and time?", "datetime"),
    q("code", "What is the pip command to install the requests package?", "pip install requests"),
    q("code", 'What does len("hello") return in Python?', "5", wrong=("4", "6")),
    q("code", "What is the type of 3.0 in Python?", "float", wrong=("<class 'int'>",)),
    q("code", "How do I open a file called data.txt for reading in Python?", "open("),
    q("file", "Who is the trial manager?", "Whitfield"),
    q("file", "When was the inspection?", ("14 March", "March 14")),
    q("file", "What soil pH was measured?", "6.8", wrong=("7.0", "6.5")),
    q("file", "How many sensors are failing?", ("2", "two"), wrong=("3", "three")),
    q("file", "Which sensor units are failing?", "S4", "S9"),
    q("file", "How large is the plot?", "2.4"),
    q("file", "What was the average soil moisture?", "31"),
    q("file", "When is the next inspection?", ("2 May", "May 2")),
    q("file", "How much of the budget has been spent?", ("4,750", "4750")),
    q("dataframe", "How many rows does the DataFrame have?", "12"),
    q("dataframe", "What columns does the DataFrame have?", "region", "units", "revenue"),
    q("dataframe", "Which column has missing values?", "discount",
      wrong=("units", "revenue")),
    q("dataframe", "What is the data type of the units column?", "int64"),
    q("dataframe", "What is the largest value in the units column?", "66"),
    q("dataframe", "What is the mean revenue?", ("415", "415.0")),
]
KINDS = ("general", "code", "file", "dataframe")


@dataclass
class Outcome:
    question: Question
    answer: str
    seconds: float
    problems: list[str] = field(default_factory=list)

    @property
    def counts(self) -> bool:
        return not self.problems


def _pattern(word: str) -> re.Pattern[str]:
    """``word`` case-insensitively, not inside a longer word or number."""
    before = r"(?<![\w.])" if word[0].isalnum() else ""
    after = r"(?!\w|\.\d)" if word[-1].isalnum() else ""
    return re.compile(before + re.escape(word) + after, re.IGNORECASE)


def _normal(text: str) -> str:
    return " ".join(text.lower().split())


def score(question: Question, answer: str, attachment: str) -> list[str]:
    """What is wrong with ``answer`` (empty: it counts).

    The echo check looks for 60 characters copied from the attachment or from the
    system prompt nbchat sends, and for the block markers of its prompt layout.
    """
    problems = []
    for group in question.expect:
        if not any(_pattern(word).search(answer) for word in group):
            problems.append("missing " + " / ".join(group))
    for word in question.wrong:
        if _pattern(word).search(answer):
            problems.append(f"wrong value {word}")
    said = _normal(answer)
    if _normal(question.text) in said:
        problems.append("echoes the question")
    if any(marker in answer for marker in TEMPLATE_MARKERS):
        problems.append("echoes the chat template")
    source = _normal(attachment + "\n" + SYSTEM_PROMPT)
    for start in range(0, max(0, len(said) - ECHO_RUN_CHARS) + 1, 10):
        if source and said[start : start + ECHO_RUN_CHARS] in source:
            problems.append("copies the prompt")
            break
    return problems


def attachments_for(kind: str, folder: Path) -> tuple[list[Any], str]:
    """The files of one kind of question, and their text (for the echo check)."""
    if kind == "file":
        path = folder / "trial-report.txt"
        path.write_text(REPORT)
        return [str(path)], REPORT
    if kind == "dataframe":
        from nbchat.core.attachments import text_spec
        from nbchat.core.dataframe import summarize_dataframe

        summary = summarize_dataframe(sales_frame(), "sales")
        return [text_spec("sales", summary, label="dataframe")], summary
    return [], ""


def ask_all(url: str, folder: Path, questions: list[Question], show: bool) -> list[Outcome]:
    import nbchat

    outcomes = []
    for question in questions:
        files, attachment = attachments_for(question.kind, folder)
        started = time.perf_counter()
        result = nbchat.chat(
            question.text, files, new=True, backend="llama", base_url=url,
            temperature=0.0, max_tokens=MAX_TOKENS,
        )
        outcome = Outcome(question, result.text, time.perf_counter() - started)
        outcome.problems = score(question, result.text, attachment)
        if result.status != "complete" and result.error_kind not in (None, "length"):
            outcome.problems.append(f"turn {result.status}: {result.error_message}")
        outcomes.append(outcome)
        if show:
            mark = "ok " if outcome.counts else "NO "
            shown = " ".join(result.text.split())[:160]
            print(f"{mark}[{question.kind}] {question.text} -> {shown}"
                  + ("" if outcome.counts else f"   ({'; '.join(outcome.problems)})"), flush=True)
    return outcomes


def row_for(label: str, outcomes: list[Outcome]) -> dict[str, Any]:
    by_kind = {}
    for kind in KINDS:
        mine = [o for o in outcomes if o.question.kind == kind]
        by_kind[kind] = [sum(o.counts for o in mine), len(mine)]
    return {
        "model": label,
        "score": sum(o.counts for o in outcomes),
        "questions": len(outcomes),
        "by_kind": by_kind,
        "median_answer_s": median([o.seconds for o in outcomes]),
        "failed": [
            {"question": o.question.text, "answer": o.answer[:200], "problems": o.problems}
            for o in outcomes if not o.counts
        ],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="smollm2-135m-instruct,gemma-3-270m",
                        help="known model names (nbchat engine models), comma-separated")
    parser.add_argument("--url", help="a running llama.cpp server instead (one row)")
    parser.add_argument("--label", default="server at --url", help="the row's name with --url")
    parser.add_argument("--limit", type=int, default=0,
                        help="ask only the first N questions of each kind (0: all)")
    parser.add_argument("--show", action="store_true", help="print every answer")
    args = parser.parse_args(argv)

    questions = QUESTIONS
    if args.limit:
        questions = [
            x for kind in KINDS for x in [y for y in QUESTIONS if y.kind == kind][: args.limit]
        ]
    folder = scratch_dir("answers")
    os.environ["NBCHAT_DB"] = str(folder / "nbchat.sqlite")  # never the user's history
    rows = []
    try:
        if args.url:
            rows.append(row_for(args.label, ask_all(args.url.rstrip("/"), folder, questions,
                                                    args.show)))
        else:
            from nbchat.engine import start_engine

            for name in [m.strip() for m in args.models.split(",") if m.strip()]:
                handle = start_engine(name, reuse=False, log_path=folder / f"{name}.log")
                try:
                    rows.append(row_for(name, ask_all(handle.url, folder, questions, args.show)))
                finally:
                    handle.stop()
    finally:
        shutil.rmtree(folder, ignore_errors=True)

    print_table(
        f"Answers: {len(questions)} questions, temperature 0, max {MAX_TOKENS} tokens "
        "(an answer counts with every expected word, no wrong value, no echo)",
        ["model", *KINDS, "total", "median s / answer"],
        [
            [r["model"], *(f"{r['by_kind'][k][0]}/{r['by_kind'][k][1]}" for k in KINDS),
             f"{r['score']}/{r['questions']}", r["median_answer_s"]]
            for r in rows
        ],
    )
    emit("answers", {"questions": len(questions), "max_tokens": MAX_TOKENS, "rows": rows})
    return 0


if __name__ == "__main__":
    sys.exit(main())
