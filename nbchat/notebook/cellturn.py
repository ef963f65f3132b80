"""The ``%%chat`` driver: options to settings and attachments, then a dry run or a stream.

A turn whose stream breaks after some text keeps and shows the partial answer, marked,
and the cell succeeds; Ctrl-C (a kernel interrupt) does the same. A server that cannot
take the turn fails the cell before anything is shown or stored.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from IPython.core.error import UsageError

from nbchat.core.errors import redact
from nbchat.core.settings import MAX_TEMPERATURE
from nbchat.notebook.parsing import user_errors
from nbchat.notebook.specs import DATAFRAME_LABEL, variable_specs

if TYPE_CHECKING:
    import argparse

    from nbchat.client import ChatClient
    from nbchat.core.attachments import AttachmentSpec
    from nbchat.core.errors import AttachmentError
    from nbchat.core.settings import Settings
    from nbchat.core.store import Session, Store
    from nbchat.core.turn import PreparedTurn, TurnResult
    from nbchat.notebook.render import DryRunView

__all__ = ["run_cell_turn", "cell_settings", "raise_attachment_failures"]


INTERRUPTED_BEFORE_SENDING = "Interrupted before the question was sent; nothing was stored."
INTERRUPTED_AFTER_STORING = "Interrupted; the question and the answer so far are kept in the session."


def run_cell_turn(shell: Any, args: "argparse.Namespace", prompt: str) -> "DryRunView | None":
    """One ``%%chat`` cell: gather attachments, prepare, then show a dry run or stream.

    Ctrl-C at any stage ends the cell with one line, and no traceback: the partial
    answer's footer while it streams, otherwise what was kept. The interrupt latch makes
    sure none is lost on the way (see :mod:`nbchat.core.interrupts`).
    """
    from nbchat.core.interrupts import deferred_interrupts, interrupt_handled, interrupt_latch
    from nbchat.notebook.state import client_for

    with interrupt_latch():
        client: ChatClient | None = None
        before: TurnResult | None = None
        try:
            client = client_for(shell)
            before = client.last_result
            return _run_cell_turn(shell, client, args, prompt)
        except KeyboardInterrupt:
            with deferred_interrupts(deliver=False):
                interrupt_handled()
                stored = client is not None and client.last_result is not before
                _show_interrupted(
                    shell, INTERRUPTED_AFTER_STORING if stored else INTERRUPTED_BEFORE_SENDING
                )
            return None


def _show_interrupted(shell: Any, message: str) -> None:
    from nbchat.notebook.render import AnswerView

    AnswerView(shell, 0).footer("", message)


def _run_cell_turn(
    shell: Any, client: "ChatClient", args: "argparse.Namespace", prompt: str
) -> "DryRunView | None":
    from nbchat.core.interrupts import raise_if_interrupted

    settings = cell_settings(client.settings, args)
    with user_errors(*settings.secrets):
        specs, failures = _notebook_specs(shell, args, settings, client.notebook, prompt)
        raise_if_interrupted()
        if args.error is not None:
            from nbchat.notebook.cells import NO_ERROR_YET, failure_spec, find_failure

            failure = find_failure(shell, args.error or None)
            if failure is None:
                print(NO_ERROR_YET)
                return None
            specs.append(failure_spec(failure, settings.secrets))
        if failures:
            raise_attachment_failures(client, settings, args.file, failures)
        prepared = client.prepare(
            prompt,
            [*args.file, *specs],
            session=args.session,
            new=args.new,
            no_history=args.no_history,
            settings=settings,
            recall=args.recall,
            count_prompt=args.dry_run,
        )
        raise_if_interrupted()
        attached_now = {spec.name for spec in specs if spec.label == DATAFRAME_LABEL}
        notices = _changed_dataframe_notices(
            shell, client.store, None if args.no_history else prepared.session, attached_now
        )
        if args.dry_run:
            from nbchat.notebook.render import DryRunView

            prepared.resolver.remember()
            return DryRunView(prepared, notices)
        raise_if_interrupted()
        _send(shell, client, prepared.with_notices(notices), settings)
    return None


def cell_settings(base: "Settings", args: "argparse.Namespace") -> "Settings":
    """The configuration with this cell's options over it."""
    settings = base
    if args.backend and args.backend != base.backend and not args.model:
        # The configured model belongs to the other server.
        settings = dataclasses.replace(settings, model=None)
    if args.max_tokens is not None and args.max_tokens < 1:
        raise UsageError("--max-tokens must be at least 1.")
    if args.temperature is not None and not 0 <= args.temperature <= MAX_TEMPERATURE:
        raise UsageError(
            f"-t/--temperature must be between 0 and {MAX_TEMPERATURE:g} "
            f"(got {args.temperature:g})."
        )
    return settings.replace(
        backend=args.backend,
        model=args.model,
        system_prompt=args.system,
        max_tokens=args.max_tokens,
        temperature=args.temperature,
    )


def _notebook_specs(
    shell: Any, args: "argparse.Namespace", settings: "Settings", notebook: str | None, prompt: str
) -> tuple[list["AttachmentSpec"], list["AttachmentError"]]:
    """Specs for ``--df``, ``--var``, ``--cell`` and ``--nb``; every missing name fails."""
    specs, failures = variable_specs(shell.user_ns, args.df, args.var, settings)
    if args.cell:
        from nbchat.notebook.cells import cell_specs

        found, missing = cell_specs(shell, args.cell, settings.secrets)
        specs += found
        failures += missing
    if args.nb:
        from nbchat.notebook.cells import notebook_spec

        specs.append(
            notebook_spec(shell, notebook, running_prompt=prompt, secrets=settings.secrets)
        )
    return specs, failures


def raise_attachment_failures(
    client: "ChatClient",
    settings: "Settings",
    files: Sequence[str],
    failures: list["AttachmentError"],
) -> None:
    """Raise one error listing the failing variables and the failing files together."""
    from nbchat.core.attachments import Resolver, as_specs
    from nbchat.core.errors import AttachmentError, AttachmentsError

    everything = list(failures)
    try:
        Resolver(client.store, settings.max_file_bytes, settings.max_inflated_bytes).resolve_all(
            as_specs(files, client.store)
        )
    except AttachmentsError as many:
        everything += many.failures
    except AttachmentError as one:
        everything.append(one)
    raise AttachmentsError(everything)


def _changed_dataframe_notices(
    shell: Any, store: "Store", session: "Session | None", attached_now: set[str]
) -> list[str]:
    """A notice for each DataFrame attached earlier whose live object has changed since."""
    from nbchat.core.dataframe import fingerprint, is_dataframe

    if session is None:
        return []
    latest = {}
    for record in store.attachments(session.id):
        if record.kind == DATAFRAME_LABEL and record.fingerprint:
            latest[record.name] = record
    notices = []
    for name, record in latest.items():
        live = shell.user_ns.get(name)
        if name in attached_now or live is None or not is_dataframe(live):
            continue
        try:
            changed = fingerprint(live) != record.fingerprint
        except Exception:  # noqa: BLE001 - an odd frame must not stop the turn
            continue
        if changed:
            turn = (record.message_seq or 0) // 2 + 1
            notices.append(
                f"DataFrame {name} has changed since it was attached on turn {turn}; the "
                f"model still sees the earlier summary. Re-attach it with --df {name}."
            )
    return notices


def _send(shell: Any, client: "ChatClient", prepared: "PreparedTurn", settings: "Settings") -> None:
    """Stream the turn into the cell's output; keep and show a partial answer on Ctrl-C."""
    from nbchat.backends.probe import served_model
    from nbchat.core.events import PromptProgress, TextDelta
    from nbchat.core.interrupts import deferred_interrupts, interrupt_handled
    from nbchat.core.turn import TurnResult
    from nbchat.notebook.footer import footer_text
    from nbchat.notebook.render import AnswerView
    from nbchat.notebook.state import remember_result

    backend = client.backend(settings)
    # ``run`` checks the server at once: one that cannot take the turn fails the cell
    # before the placeholder appears.
    events = client.run(prepared)
    view = AnswerView(shell, settings.stream_update_interval)
    view.start()
    result: TurnResult | None = None
    interrupted = False
    try:
        for event in events:
            if isinstance(event, TextDelta):
                view.add(event.text)
            elif isinstance(event, PromptProgress) and event.worth_showing:
                view.progress(event.describe())
            elif isinstance(event, TurnResult):
                result = event
    except KeyboardInterrupt:
        interrupted = True
        interrupt_handled()
        with deferred_interrupts(deliver=False):
            events.close()  # when the interrupt hit this loop, closing stores the partial answer
            result = _interrupted_result(client)
            if result is None:
                view.discard()
                view.footer("", INTERRUPTED_BEFORE_SENDING)
                return
    except BaseException:
        with deferred_interrupts(deliver=False):
            events.close()
            view.discard()
        raise
    if result is None:
        # The stream ended without a result: only a bug does that.
        view.discard()
        raise RuntimeError("The turn ended without storing a result.")
    remember_result(shell, result)
    if result.status == "error" and not interrupted:
        view.discard()
        message = result.error_message or "The server sent no answer."
        raise UsageError(redact(message, *settings.secrets))
    view.finish()
    problem = None
    if interrupted and not result.text:
        problem = "Interrupted before the first word arrived; the question is kept in the session."
    elif result.status == "partial" and result.error_kind != "interrupted":
        problem = redact(result.error_message or "The answer stopped early.", *settings.secrets)
    view.footer(footer_text(result, served_model(backend, settings.resolved_model)), problem)


def _interrupted_result(client: "ChatClient") -> "TurnResult | None":
    """The partial answer the client kept when the stream was interrupted, if any."""
    result = client.last_result
    if result is None:
        return None  # interrupted before the question was stored
    return dataclasses.replace(result, error_kind=result.error_kind or "interrupted")
