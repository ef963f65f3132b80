"""KV-cache reuse: nbchat's layout against the reference layout, on the real llama.cpp server.

A scripted conversation (10 turns by default): three text files of ~1.5k tokens on turn
1, one more on turn 5, short questions, short answers (``max_tokens`` 32). It runs twice
on the same server, one slot:

- **nbchat**: through :class:`nbchat.api.ChatClient` (prepare + run, stored as usual);
- **reference**: the layout nbchat replaces, built here and sent through the same
  backend's ``stream``: files of earlier turns re-injected into the system message every
  turn, a clean history (questions and answers only), this turn's files in the user
  message.

The two runs start with different system prompts, so the cache of one cannot serve the
other (the first turn of the second run shows ``cache_n`` of a few tokens at most).

Per turn: ``prompt_n`` (tokens evaluated) and ``cache_n`` (reused) from the server's
timings, the prompt's exact length (``/apply-template`` then ``/tokenize``), the new
tokens of the turn (what is not a common prefix with the previous turn's prompt), and
the wall time. Targets (issue "Benchmarks", item 1): Σ prompt_n ≤ 1.05 × the growth of
nbchat's prompt over the conversation; ≤ ~40 tokens evaluated on a turn with a short
question and no new file; the reference evaluates ≥ 2× more in total.

    python bench/bench_kv_cache.py [--url URL] [--turns 10] [--file-tokens 1500]
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from common import (
    common_prefix_tokens,
    count_tokens,
    emit,
    fit_prose,
    local_engine,
    median,
    print_table,
    ratio,
    scratch_dir,
    template_tokens,
)

NBCHAT_SYSTEM = "You are a helpful assistant working inside a Jupyter notebook."
# The reference run starts with other words: its first tokens differ from nbchat's.
REFERENCE_SYSTEM = "Reference run. You are a helpful assistant working inside a Jupyter notebook."
EARLIER_HEADING = "Files shared earlier in this conversation:"
QUESTIONS = [
    "Which site is named most often in these reports?",
    "Name one pump problem from the first file.",
    "Give the item number of the storm entry.",
    "Which team checked the sensor drift?",
    "What does the new log add to the picture?",
    "Is the budget mentioned in the new log?",
    "Name a delay from the second file.",
    "Which wing had trouble with power?",
    "Pick the most urgent item overall.",
    "Sum it up in one short sentence.",
]
SHORT_TURN_TARGET_TOKENS = 40
GROWTH_TARGET = 1.05
REFERENCE_TARGET = 2.0


@dataclass(frozen=True)
class TurnFigures:
    turn: int
    files: int
    prompt_tokens: int
    new_tokens: int
    prompt_n: int
    cache_n: int
    wall_ms: float

    def row(self) -> list[Any]:
        return [self.turn, self.files, self.prompt_tokens, self.new_tokens, self.prompt_n,
                self.cache_n, self.wall_ms]


def script(turns: int, file_turns: dict[int, list[Path]]) -> list[tuple[str, list[Path]]]:
    """The conversation: (question, files attached on that turn) per turn."""
    return [
        (QUESTIONS[i % len(QUESTIONS)] + ("" if i < len(QUESTIONS) else f" ({i + 1})"),
         file_turns.get(i + 1, []))
        for i in range(turns)
    ]


def make_files(http: Any, url: str, folder: Path, file_tokens: int, count: int) -> list[Path]:
    """``count`` distinct text files of about ``file_tokens`` tokens each."""
    topics = ["the Harbor plant", "the Cedar depot", "the Willow line", "the north wing"]
    paths = []
    for index in range(count):
        path = folder / f"site_log_{index + 1}.txt"
        path.write_text(
            fit_prose(100 + index, file_tokens, partial(count_tokens, http, url),
                      topic=topics[index % len(topics)]),
            encoding="utf-8",
        )
        paths.append(path)
    return paths


def run_nbchat(
    url: str, http: Any, turns: list[tuple[str, list[Path]]], db_path: Path, max_tokens: int
) -> list[TurnFigures]:
    from nbchat.api import ChatClient
    from nbchat.core.settings import Settings
    from nbchat.core.turn import TurnResult

    settings = Settings(
        backend="llama", base_url=url, db_path=db_path, max_tokens=max_tokens, temperature=0.0,
        system_prompt=NBCHAT_SYSTEM,
    )
    client = ChatClient(settings)
    figures: list[TurnFigures] = []
    previous: list[int] = []
    try:
        for index, (question, files) in enumerate(turns):
            started = time.perf_counter()
            prepared = client.prepare(question, [str(p) for p in files], new=index == 0)
            result: TurnResult | None = None
            for event in client.run(prepared):
                if isinstance(event, TurnResult):
                    result = event
            wall_ms = (time.perf_counter() - started) * 1000
            assert result is not None and result.status == "complete", result
            tokens = template_tokens(http, url, prepared.messages)
            figures.append(
                _figures(index + 1, len(files), tokens, previous, result.timings, wall_ms)
            )
            previous = tokens
    finally:
        client.close()
    return figures


def reference_messages(
    system: str,
    history: list[tuple[str, str]],
    earlier_blocks: list[str],
    current_blocks: list[str],
    question: str,
) -> list[dict[str, str]]:
    """The reference layout: earlier files in the system message, clean history."""
    if earlier_blocks:
        system = system + "\n\n" + EARLIER_HEADING + "\n\n" + "\n\n".join(earlier_blocks)
    messages = [{"role": "system", "content": system}]
    for asked, answered in history:
        messages.append({"role": "user", "content": asked})
        messages.append({"role": "assistant", "content": answered})
    user = "\n\n".join([*current_blocks, question])
    messages.append({"role": "user", "content": user})
    return messages


def run_reference(
    url: str, http: Any, turns: list[tuple[str, list[Path]]], max_tokens: int
) -> list[TurnFigures]:
    from nbchat.backends.llama import LlamaServerBackend
    from nbchat.core.events import TextDelta, Usage
    from nbchat.core.extract import extract_bytes
    from nbchat.core.layout import render_block

    backend = LlamaServerBackend(url)
    history: list[tuple[str, str]] = []
    earlier: list[str] = []
    figures: list[TurnFigures] = []
    previous: list[int] = []
    try:
        for index, (question, files) in enumerate(turns):
            started = time.perf_counter()
            blocks = []
            for path in files:  # re-read and re-extracted, as the reference does each turn
                extracted = extract_bytes(path.read_bytes(), path.name)
                blocks.append(
                    render_block("FILE", path.name, extracted.kind, _sha(path), extracted.text)
                )
            messages = reference_messages(REFERENCE_SYSTEM, history, earlier, blocks, question)
            text: list[str] = []
            timings: dict[str, Any] = {}
            stream = backend.stream(messages, model=None, max_tokens=max_tokens, temperature=0.0)
            for event in stream:
                if isinstance(event, TextDelta):
                    text.append(event.text)
                elif isinstance(event, Usage):
                    timings = dict(event.timings)
            wall_ms = (time.perf_counter() - started) * 1000
            tokens = template_tokens(http, url, messages)
            figures.append(_figures(index + 1, len(files), tokens, previous, timings, wall_ms))
            previous = tokens
            history.append((question, "".join(text)))
            earlier.extend(blocks)
    finally:
        backend.close()
    return figures


def _sha(path: Path) -> str:
    import hashlib

    return hashlib.sha256(path.read_bytes()).hexdigest()


def _figures(
    turn: int, files: int, tokens: list[int], previous: list[int], timings: dict[str, Any],
    wall_ms: float,
) -> TurnFigures:
    new = len(tokens) - common_prefix_tokens(tokens, previous)
    return TurnFigures(
        turn, files, len(tokens), new, int(timings.get("prompt_n", -1)),
        int(timings.get("cache_n", -1)), wall_ms,
    )


def summarize(nbchat: list[TurnFigures], reference: list[TurnFigures]) -> dict[str, Any]:
    growth = sum(t.new_tokens for t in nbchat)
    nbchat_sum = sum(t.prompt_n for t in nbchat)
    reference_sum = sum(t.prompt_n for t in reference)
    short_turns = [t for t in nbchat if t.turn > 1 and t.files == 0]
    short_max = max((t.prompt_n for t in short_turns), default=0)
    return {
        "nbchat_prompt_n": nbchat_sum,
        "reference_prompt_n": reference_sum,
        "growth_tokens": growth,
        "nbchat_over_growth": ratio(nbchat_sum, growth),
        "reference_over_nbchat": ratio(reference_sum, nbchat_sum),
        "short_turn_max_prompt_n": short_max,
        "short_turn_median_prompt_n": median([t.prompt_n for t in short_turns]),
        "nbchat_wall_s": sum(t.wall_ms for t in nbchat) / 1000,
        "reference_wall_s": sum(t.wall_ms for t in reference) / 1000,
        "reference_first_cache_n": reference[0].cache_n if reference else 0,
        "targets": {
            "nbchat_over_growth_max": GROWTH_TARGET,
            "short_turn_prompt_n_max": SHORT_TURN_TARGET_TOKENS,
            "reference_over_nbchat_min": REFERENCE_TARGET,
        },
        "met": {
            "growth": nbchat_sum <= GROWTH_TARGET * growth,
            "short_turn": short_max <= SHORT_TURN_TARGET_TOKENS,
            "reference": reference_sum >= REFERENCE_TARGET * nbchat_sum,
        },
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--url", help="a running llama.cpp server (default: start the local engine)"
    )
    parser.add_argument("--turns", type=int, default=10)
    parser.add_argument("--file-tokens", type=int, default=1500)
    parser.add_argument("--max-tokens", type=int, default=32)
    parser.add_argument("--late-file-turn", type=int, default=5,
                        help="the turn that attaches the fourth file (0: none)")
    args = parser.parse_args(argv)
    import httpx

    folder = scratch_dir("kv")
    with local_engine(args.url) as url, httpx.Client(timeout=600) as http:
        files = make_files(http, url, folder, args.file_tokens, 4)
        file_turns = {1: files[:3]}
        if 0 < args.late_file_turn <= args.turns:
            file_turns[args.late_file_turn] = files[3:]
        turns = script(args.turns, file_turns)
        nbchat = run_nbchat(url, http, turns, folder / "nbchat.sqlite", args.max_tokens)
        reference = run_reference(url, http, turns, args.max_tokens)
    summary = summarize(nbchat, reference)

    columns = ["turn", "files", "prompt tok", "new tok", "prompt_n", "cache_n", "wall ms"]
    print_table("nbchat layout (append-only)", columns, [t.row() for t in nbchat])
    print_table("reference layout (earlier files in the system message)", columns,
                [t.row() for t in reference])
    print_table(
        "KV-cache reuse vs targets",
        ["figure", "measured", "target", "met"],
        [
            ["Σ prompt_n / prompt growth", summary["nbchat_over_growth"], f"≤ {GROWTH_TARGET}",
             summary["met"]["growth"]],
            ["max prompt_n, short-question turn", summary["short_turn_max_prompt_n"],
             f"≤ ~{SHORT_TURN_TARGET_TOKENS}", summary["met"]["short_turn"]],
            ["reference Σ prompt_n / nbchat's", summary["reference_over_nbchat"],
             f"≥ {REFERENCE_TARGET}", summary["met"]["reference"]],
        ],
    )
    emit(
        "kv_cache",
        {
            "turns": args.turns,
            "file_tokens": args.file_tokens,
            "max_tokens": args.max_tokens,
            **summary,
            "nbchat": [t.__dict__ for t in nbchat],
            "reference": [t.__dict__ for t in reference],
        },
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
