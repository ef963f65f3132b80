"""What the benchmarks share: statistics, the table and the JSON line, servers, texts.

Every benchmark prints a small table for people and then exactly one JSON line for
machines: ``{"bench": NAME, ...}`` (see :func:`emit`). ``bench/run`` collects those
lines. Figures are medians of several runs, and comparisons are ratios measured in the
same run, because the machines here are shared and noisy.
"""

from __future__ import annotations

import atexit
import json
import math
import random
import shutil
import statistics
import sys
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType
from typing import Any

REPO = Path(__file__).resolve().parents[1]
TESTS = REPO / "tests"
JSON_MARK = '{"bench":'

__all__ = [
    "REPO",
    "median",
    "percentile",
    "ratio",
    "print_table",
    "emit",
    "parse_json_lines",
    "load_test_helper",
    "local_engine",
    "template_tokens",
    "common_prefix_tokens",
    "prose",
    "fit_prose",
    "scratch_dir",
]


# -- statistics ---------------------------------------------------------------------------


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values)) if values else math.nan


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0..100), linear between the closest ranks."""
    if not values:
        return math.nan
    ordered = sorted(values)
    position = (len(ordered) - 1) * q / 100.0
    low = math.floor(position)
    high = math.ceil(position)
    if low == high:
        return float(ordered[low])
    return float(ordered[low] + (ordered[high] - ordered[low]) * (position - low))


def ratio(numerator: float, denominator: float) -> float:
    return numerator / denominator if denominator else math.inf


# -- output -------------------------------------------------------------------------------


def _cell(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "NO"
    if isinstance(value, float):
        if math.isnan(value):
            return "-"
        if abs(value) >= 100:
            return f"{value:,.0f}"
        if abs(value) >= 10:
            return f"{value:.1f}"
        return f"{value:.2f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def print_table(title: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """A plain-text table with right-aligned cells (numbers formatted for reading)."""
    cells = [[_cell(v) for v in row] for row in rows]
    widths = [
        max([len(column)] + [len(row[i]) for row in cells]) for i, column in enumerate(columns)
    ]
    print(title)
    print("  ".join(c.rjust(w) for c, w in zip(columns, widths)))
    for row in cells:
        print("  ".join(c.rjust(w) for c, w in zip(row, widths)))
    print()


def _plain(value: Any) -> Any:
    if isinstance(value, float):
        return None if math.isnan(value) or math.isinf(value) else round(value, 4)
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def emit(name: str, payload: dict[str, Any]) -> dict[str, Any]:
    """Print the benchmark's one JSON line (``bench`` first) and return it as printed."""
    line = {"bench": name, **_plain(payload)}
    print(json.dumps(line, ensure_ascii=False), flush=True)
    return line


def parse_json_lines(text: str) -> list[dict[str, Any]]:
    """The benchmark JSON lines found in ``text`` (other lines are ignored)."""
    found = []
    for line in text.splitlines():
        if line.startswith(JSON_MARK):
            found.append(json.loads(line))
    return found


# -- helpers shared with the tests ------------------------------------------------------------


def load_test_helper(name: str) -> ModuleType:
    """A helper module of the test suite (``sse_server``, ``filegen``), imported by name."""
    if str(TESTS) not in sys.path:
        sys.path.insert(0, str(TESTS))
    import importlib

    return importlib.import_module(name)


# -- the local engine ---------------------------------------------------------------------------


@contextmanager
def local_engine(
    url: str | None = None, *, ctx_tokens: int = 8192, model: str | None = None
) -> Iterator[str]:
    """The URL of a llama.cpp server: ``url`` when given, else a fresh local engine
    (``model``, by default SmolLM2-135M-Instruct; one slot, ``ctx_tokens`` context)
    stopped on exit."""
    if url:
        yield url.rstrip("/")
        return
    from nbchat.engine import start_engine

    with tempfile.TemporaryDirectory(prefix="nbchat-bench-engine-") as log_dir:
        handle = start_engine(
            model, ctx_tokens=ctx_tokens, reuse=False, log_path=Path(log_dir) / "engine.log"
        )
        try:
            yield handle.url
        finally:
            handle.stop()


def send(http: Any, request: Any, *, stream: bool = False) -> Any:
    """``http.send(request)``, once more when the server had closed the pooled connection
    before any byte of an answer (llama-server drops kept-alive connections), as
    nbchat's backend does."""
    import httpx

    try:
        return http.send(request, stream=stream)
    except httpx.RemoteProtocolError:
        return http.send(request, stream=stream)


def post_json(http: Any, url: str, body: Any) -> Any:
    """The JSON answer to a POST of ``body`` (see :func:`send`); an error status raises."""
    response = send(http, http.build_request("POST", url, json=body))
    response.raise_for_status()
    return response.json()


def count_tokens(http: Any, url: str, text: str) -> int:
    """``text``'s tokens by the server's own tokenizer (no BOS)."""
    return len(post_json(http, f"{url}/tokenize", {"content": text})["tokens"])


def template_tokens(http: Any, url: str, messages: Sequence[dict[str, str]]) -> list[int]:
    """The exact prompt tokens the server builds from ``messages``.

    ``/apply-template`` renders the chat template, ``/tokenize`` (special tokens parsed,
    BOS added) tokenizes it as a completion request would.
    """
    prompt = post_json(http, f"{url}/apply-template", {"messages": list(messages)})["prompt"]
    tokens = post_json(
        http, f"{url}/tokenize", {"content": prompt, "add_special": True, "parse_special": True}
    )
    return list(tokens["tokens"])


def common_prefix_tokens(a: Sequence[int], b: Sequence[int]) -> int:
    """Length of the longest common prefix of two token lists."""
    count = 0
    for x, y in zip(a, b):
        if x != y:
            break
        count += 1
    return count


# -- texts ------------------------------------------------------------------------------------

_SUBJECTS = [
    "The survey team", "Our reviewer", "The night shift", "The finance group", "A field engineer",
    "The pilot plant", "The archive", "The support desk", "The river station", "The lab",
]
_VERBS = [
    "recorded", "measured", "reported", "compared", "estimated", "flagged", "reviewed",
    "summarised", "logged", "checked",
]
_OBJECTS = [
    "the water level", "the monthly budget", "three failed pumps", "the ticket backlog",
    "a drop in output", "the sensor drift", "the shipping delay", "the audit trail",
    "the power draw", "the sample purity",
]
_TAILS = [
    "before noon", "after the storm", "during the upgrade", "for the second time",
    "in the north wing", "without a spare part", "against last year's figure",
    "at the Harbor site", "near the Cedar depot", "on the Willow line",
]


def prose(seed: int, sentences: int, *, topic: str = "") -> str:
    """Deterministic report-like text: ``sentences`` sentences in short paragraphs."""
    rng = random.Random(seed)
    lines = []
    paragraph: list[str] = []
    for index in range(sentences):
        number = rng.randint(2, 980)
        sentence = (
            f"{rng.choice(_SUBJECTS)} {rng.choice(_VERBS)} {rng.choice(_OBJECTS)} "
            f"{rng.choice(_TAILS)}, item {number}{(' of ' + topic) if topic else ''}."
        )
        paragraph.append(sentence)
        if len(paragraph) == 5 or index == sentences - 1:
            lines.append(" ".join(paragraph))
            paragraph = []
    return "\n\n".join(lines)


def fit_prose(seed: int, target_tokens: int, count_tokens: Any, *, topic: str = "") -> str:
    """Prose of about ``target_tokens`` tokens by ``count_tokens`` (within one sentence)."""
    sentences = max(1, target_tokens // 20)
    for _ in range(6):
        text = prose(seed, sentences, topic=topic)
        tokens = count_tokens(text)
        if abs(tokens - target_tokens) <= 25:
            return text
        sentences = max(1, round(sentences * target_tokens / max(1, tokens)))
    return text


def scratch_dir(prefix: str) -> Path:
    """A new temporary directory for this benchmark, removed when its interpreter exits.

    Each benchmark runs in its own interpreter (``bench/run``, the smoke tests), so
    removal at exit leaves nothing in the system temp folder, even after a failure.
    """
    folder = Path(tempfile.mkdtemp(prefix=f"nbchat-bench-{prefix}-"))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    return folder
