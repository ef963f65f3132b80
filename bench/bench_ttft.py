"""Time to first token: nbchat against a bare httpx stream of the same request.

On the real local llama.cpp server, a conversation is opened with a first turn that
attaches a ~1k-token file. Then, in pairs, with the order alternating from pair to pair:

- **nbchat**: a turn as ``%%chat`` runs it, timed from the start of ``client.prepare``
  (session, history, token counts, memory planner) through ``client.run`` (health check,
  storing the question, the request) to the first delta drawn by an
  :class:`~nbchat.notebook.render.AnswerView` (live mode, null display publisher);
- **bare**: the same kind of request with httpx alone — the messages nbchat would send
  for a sibling question of the same length (built untimed by a dry ``prepare``) — timed
  from opening the stream to the first content delta parsed.

Both requests find the same conversation prefix in the server's KV cache and evaluate
one new short question, so the difference is nbchat's own time before the first token.
Target (issue "Benchmarks", item 4): median ratio nbchat / bare ≤ 1.05.

    python bench/bench_ttft.py [--url URL] [--pairs 20]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from functools import partial
from typing import Any

from common import (
    count_tokens,
    emit,
    fit_prose,
    local_engine,
    median,
    print_table,
    ratio,
    scratch_dir,
    send,
)

TARGET_RATIO = 1.05
TOPICS = ["pump", "storm", "budget", "audit", "sensor", "delay", "power", "purity", "backlog",
          "upgrade", "archive", "depot", "wing", "line", "shift", "plant", "river", "desk"]


class TurnFailed(Exception):
    """nbchat's turn ended without an answer (the server failed it)."""


def question(index: int, side: str) -> str:
    topic = TOPICS[index % len(TOPICS)]
    return f"Question {index}{side}: which item number goes with the {topic} entry in the log?"


def nbchat_ttft(
    client: Any, text: str, shell: Any, files: tuple[str, ...] = ()
) -> tuple[float, dict[str, Any]]:
    """Seconds to the first drawn delta; the rest of the answer is read (and stored) untimed."""
    from nbchat.core.events import TextDelta
    from nbchat.core.turn import TurnResult
    from nbchat.notebook.render import LIVE, AnswerView

    started = time.perf_counter()
    first = None
    prepared = client.prepare(text, list(files))
    view = AnswerView(shell, prepared.settings.stream_update_interval, mode=LIVE)
    view.start()
    timings: dict[str, Any] = {}
    result = None
    for event in client.run(prepared):
        if isinstance(event, TextDelta):
            view.add(event.text)
            if first is None:
                first = time.perf_counter()
        elif isinstance(event, TurnResult):
            result = event
            timings = dict(event.timings)
    view.finish()
    if first is None:
        raise TurnFailed(result.error_message if result is not None else "no answer")
    return first - started, timings


def bare_ttft(
    http: Any, url: str, messages: list[dict[str, str]], max_tokens: int
) -> tuple[float, dict[str, Any]]:
    """Seconds from opening the stream to the first content delta, with httpx alone."""
    body = {
        "messages": messages, "stream": True, "stream_options": {"include_usage": True},
        "max_tokens": max_tokens, "temperature": 0.0, "cache_prompt": True,
    }
    started = time.perf_counter()
    first = None
    timings: dict[str, Any] = {}
    request = http.build_request("POST", f"{url}/v1/chat/completions", json=body)
    response = send(http, request, stream=True)  # a retry, as nbchat's, is inside the timing
    try:
        response.raise_for_status()
        for line in response.iter_lines():
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            chunk = json.loads(line[6:])
            choices = chunk.get("choices") or []
            if first is None and choices and (choices[0].get("delta") or {}).get("content"):
                first = time.perf_counter()
            if chunk.get("timings"):
                timings = chunk["timings"]
    finally:
        response.close()
    if first is None:
        raise TurnFailed("the stream ended before any text")
    return first - started, timings


class _NullShell:
    class _Publisher:
        def publish(self, data: Any, metadata: Any = None, **kwargs: Any) -> None:
            pass

    display_pub = _Publisher()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--url", help="a running llama.cpp server (default: start the local engine)"
    )
    parser.add_argument("--pairs", type=int, default=20)
    parser.add_argument("--max-tokens", type=int, default=16)
    parser.add_argument("--file-tokens", type=int, default=1000)
    args = parser.parse_args(argv)
    import httpx

    from nbchat.api import ChatClient
    from nbchat.core.errors import NbChatError
    from nbchat.core.settings import Settings

    folder = scratch_dir("ttft")
    nbchat_s: list[float] = []
    bare_s: list[float] = []
    prompt_n: dict[str, list[int]] = {"nbchat": [], "bare": []}
    failures: list[dict[str, Any]] = []
    with local_engine(args.url) as url, httpx.Client(timeout=600) as http:
        log = folder / "site_log.txt"
        log.write_text(fit_prose(300, args.file_tokens, partial(count_tokens, http, url)), encoding="utf-8")
        settings = Settings(backend="llama", base_url=url, db_path=folder / "ttft.sqlite",
                            max_tokens=args.max_tokens, temperature=0.0)
        client = ChatClient(settings)
        shell = _NullShell()
        try:
            # The conversation's first turn: a file, so the prefix is of a realistic size.
            nbchat_ttft(client, "Here is the site log; read it.", shell, (str(log),))
            for index in range(args.pairs):
                order = ("nbchat", "bare") if index % 2 == 0 else ("bare", "nbchat")
                pair: dict[str, tuple[float, dict[str, Any]]] = {}
                for side in order:
                    try:
                        if side == "nbchat":
                            pair[side] = nbchat_ttft(client, question(index, "a"), shell)
                        else:
                            # What nbchat would send for a sibling question now (untimed).
                            sibling = client.prepare(question(index, "b")).messages
                            pair[side] = bare_ttft(http, url, sibling, args.max_tokens)
                    except (httpx.TransportError, NbChatError, TurnFailed) as error:
                        # A pair with a failed request is left out, and counted.
                        failures.append({"pair": index, "side": side, "error": str(error)[:200]})
                        break
                if len(pair) < 2:
                    continue
                nbchat_s.append(pair["nbchat"][0])
                bare_s.append(pair["bare"][0])
                for side, (_, timings) in pair.items():
                    prompt_n[side].append(int(timings.get("prompt_n", -1)))
        finally:
            client.close()

    nbchat_ms = median(nbchat_s) * 1000
    bare_ms = median(bare_s) * 1000
    measured = ratio(nbchat_ms, bare_ms)
    paired = median([a / b for a, b in zip(nbchat_s, bare_s)])
    met = measured <= TARGET_RATIO
    print_table(
        f"time to first token on the local engine, median of {len(nbchat_s)} alternating pairs",
        ["client", "TTFT ms", "prompt_n (median)"],
        [["nbchat (prepare → first drawn delta)", nbchat_ms, median(prompt_n["nbchat"])],
         ["bare httpx (request → first delta)", bare_ms, median(prompt_n["bare"])]],
    )
    if failures:
        print(f"{len(failures)} pair(s) left out after a failed request: "
              + "; ".join(f"pair {f['pair']} ({f['side']}): {f['error']}" for f in failures))
    print(f"ratio nbchat / bare: {measured:.3f} (paired median {paired:.3f}); target ≤ "
          f"{TARGET_RATIO} ({'met' if met else 'MISSED'}); nbchat's own time ≈ "
          f"{nbchat_ms - bare_ms:.1f} ms")
    print()
    emit(
        "ttft",
        {
            "pairs": args.pairs,
            "nbchat_ms": nbchat_ms,
            "bare_ms": bare_ms,
            "difference_ms": nbchat_ms - bare_ms,
            "ratio": measured,
            "paired_ratio": paired,
            "target_ratio_max": TARGET_RATIO,
            "met": met,
            "failed_pairs": failures,
            "nbchat_prompt_n": median(prompt_n["nbchat"]),
            "bare_prompt_n": median(prompt_n["bare"]),
            "nbchat_runs_ms": [s * 1000 for s in nbchat_s],
            "bare_runs_ms": [s * 1000 for s in bare_s],
        },
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
