"""DataFrames and other variables as compact text a model can read within a budget.

A DataFrame becomes a summary, not a dump: its shape, one line per column (dtype, null
share, distinct count, min/max/mean or the most frequent values), a few sample rows and
a numeric ``describe`` table, both as Markdown. pandas and polars are recognised by the
module of the object's type, so neither library is imported here unless the user
already holds one of its frames. :func:`fingerprint` is a cheap content hash that lets
the notebook notice later that an attached frame has changed.
"""

from __future__ import annotations

import hashlib
import reprlib
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

__all__ = [
    "dataframe_kind",
    "is_dataframe",
    "summarize_dataframe",
    "fingerprint",
    "summarize_variable",
    "DEFAULT_MAX_COLUMNS",
    "DEFAULT_SAMPLE_ROWS",
]

DEFAULT_MAX_COLUMNS = 40
DEFAULT_SAMPLE_ROWS = 5
MAX_CELL_CHARS = 40
TOP_VALUES = 3
# Frames up to this many rows are hashed in full; larger ones by shape, schema and
# an evenly spread sample of rows (a change between sampled rows can go unnoticed).
FULL_HASH_ROWS = 1_000_000
SAMPLE_HASH_ROWS = 3_000
# Builtin containers longer than this are shown with their first items only.
LARGE_CONTAINER_ITEMS = 1_000
_CONTAINERS = (list, tuple, set, frozenset, dict, deque)
DESCRIBE_STATS = ("count", "mean", "std", "min", "25%", "50%", "75%", "max")


def dataframe_kind(obj: Any) -> str | None:
    """``"pandas"`` or ``"polars"`` for a DataFrame (or pandas Series), else None."""
    cls = type(obj)
    library = cls.__module__.split(".", 1)[0]
    if library == "pandas" and cls.__name__ in ("DataFrame", "Series"):
        return "pandas"
    if library == "polars" and cls.__name__ in ("DataFrame", "Series"):
        return "polars"
    return None


def is_dataframe(obj: Any) -> bool:
    return dataframe_kind(obj) is not None


@dataclass(frozen=True)
class _Column:
    """What the summary says about one column."""

    name: str
    dtype: str
    null_count: int
    distinct: int | None
    numeric: bool
    minimum: Any = None
    maximum: Any = None
    mean: float | None = None
    top: tuple[tuple[Any, int], ...] = ()


@dataclass(frozen=True)
class _Frame:
    """A library-neutral view of the parts of a frame the summary shows."""

    library: str
    rows: int
    columns: tuple[str, ...]
    summaries: tuple[_Column, ...]
    index_name: str | None  # set when the row labels carry meaning (pandas, not a range)
    sample: tuple[tuple[Any, ...], ...]  # (label?, values...) of the first rows
    describe: tuple[tuple[str, dict[str, Any]], ...]  # (column, {stat: value})


def summarize_dataframe(
    df: Any,
    name: str,
    max_columns: int = DEFAULT_MAX_COLUMNS,
    *,
    sample_rows: int = DEFAULT_SAMPLE_ROWS,
) -> str:
    """A Markdown summary of ``df`` for the model, titled with its variable ``name``."""
    kind = dataframe_kind(df)
    if kind == "pandas":
        frame = _pandas_frame(df, max_columns, sample_rows)
    elif kind == "polars":
        frame = _polars_frame(df, max_columns, sample_rows)
    else:
        raise TypeError(f"{name} is a {type(df).__name__}, not a pandas or polars DataFrame")
    return _render(frame, name, max_columns)


def fingerprint(df: Any) -> str:
    """A short hash of a frame's content: equal frames give equal fingerprints."""
    kind = dataframe_kind(df)
    digest = hashlib.sha256()
    if kind == "pandas":
        _pandas_fingerprint(df, digest)
    elif kind == "polars":
        _polars_fingerprint(df, digest)
    else:
        digest.update(type(df).__qualname__.encode())
        digest.update(_safe_repr(df, 100_000).encode("utf-8", "replace"))
    return digest.hexdigest()[:16]


def summarize_variable(obj: Any, name: str, max_chars: int = 20_000) -> str:
    """``name``'s type and its repr (a string's own text), cut to ``max_chars``."""
    facts = [f"type {_type_name(obj)}"]
    try:
        facts.append(f"length {len(obj):,}")
    except Exception:  # noqa: BLE001 - many objects have no length; that is fine
        pass
    shape = getattr(obj, "shape", None)
    if isinstance(shape, tuple):
        facts.append(f"shape {shape}")
    if isinstance(obj, str):
        body = _cut_middle(obj, max_chars)
        what = "text"
    else:
        body = _safe_repr(obj, max_chars)
        what = "repr"
    return f"Variable `{name}` ({', '.join(facts)}), its {what}:\n{body}"


# -- pandas -----------------------------------------------------------------------------


def _pandas_frame(df: Any, max_columns: int, sample_rows: int) -> _Frame:
    import pandas as pd  # the caller already holds a pandas object, so this is loaded

    if isinstance(df, pd.Series):
        df = df.to_frame(name=df.name if df.name is not None else "value")
    shown = min(df.shape[1], max_columns)
    summaries: list[_Column] = []
    describe: list[tuple[str, dict[str, Any]]] = []
    for position in range(shown):
        series = df.iloc[:, position]
        column = str(df.columns[position])
        numeric = bool(
            pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series)
        )
        temporal = bool(pd.api.types.is_datetime64_any_dtype(series))
        minimum = maximum = mean = None
        top: tuple[tuple[Any, int], ...] = ()
        if numeric or temporal:
            minimum, maximum = _quietly(series.min), _quietly(series.max)
        if numeric:
            mean = _quietly(series.mean)
            stats = _quietly(series.describe)
            if stats is not None:
                describe.append((column, {k: stats.get(k) for k in DESCRIBE_STATS}))
        elif not temporal:
            counts = _quietly(lambda: series.value_counts(dropna=True).head(TOP_VALUES))
            if counts is not None:
                top = tuple((value, int(count)) for value, count in counts.items())
        summaries.append(
            _Column(
                name=column,
                dtype=str(series.dtype),
                null_count=int(series.isna().sum()),
                distinct=_quietly(lambda: int(series.nunique(dropna=True))),
                numeric=numeric,
                minimum=minimum,
                maximum=maximum,
                mean=mean,
                top=top,
            )
        )
    head = df.iloc[:sample_rows, :shown]
    labelled = not isinstance(df.index, pd.RangeIndex)
    sample = tuple(
        ((label,) if labelled else ()) + tuple(values)
        for label, values in zip(head.index, head.itertuples(index=False, name=None))
    )
    return _Frame(
        library="pandas",
        rows=int(df.shape[0]),
        columns=tuple(str(c) for c in df.columns),
        summaries=tuple(summaries),
        index_name=_index_name(df) if labelled else None,
        sample=sample,
        describe=tuple(describe),
    )


def _index_name(df: Any) -> str:
    return str(df.index.name) if df.index.name is not None else "index"


def _pandas_fingerprint(df: Any, digest: Any) -> None:
    import pandas as pd

    digest.update(repr((type(df).__name__, df.shape)).encode())
    if isinstance(df, pd.DataFrame):
        digest.update(repr([(str(c), str(t)) for c, t in df.dtypes.items()]).encode())
    else:
        digest.update(repr((str(df.name), str(df.dtype))).encode())
    part = df
    if len(df) > FULL_HASH_ROWS:
        step = max(1, len(df) // SAMPLE_HASH_ROWS)
        part = df.iloc[::step]
    try:
        digest.update(pd.util.hash_pandas_object(part, index=True).to_numpy().tobytes())
    except (TypeError, ValueError):  # unhashable cells (lists, dicts): hash their text
        digest.update(_safe_repr(part.head(200), 200_000).encode("utf-8", "replace"))
        digest.update(_safe_repr(part.tail(200), 200_000).encode("utf-8", "replace"))


# -- polars -----------------------------------------------------------------------------


def _polars_frame(df: Any, max_columns: int, sample_rows: int) -> _Frame:
    if type(df).__name__ == "Series":
        df = df.to_frame()
    names = list(df.columns)
    shown = names[:max_columns]
    summaries: list[_Column] = []
    describe: list[tuple[str, dict[str, Any]]] = []
    for column in shown:
        series = df.get_column(column)
        dtype = series.dtype
        numeric = bool(_quietly(dtype.is_numeric)) and str(dtype) != "Boolean"
        temporal = bool(_quietly(dtype.is_temporal))
        nulls = int(series.null_count())
        minimum = maximum = mean = None
        top: tuple[tuple[Any, int], ...] = ()
        if numeric or temporal:
            minimum, maximum = _quietly(series.min), _quietly(series.max)
        if numeric:
            mean = _quietly(series.mean)
            describe.append(
                (
                    column,
                    {
                        "count": len(series) - nulls,
                        "mean": mean,
                        "std": _quietly(series.std),
                        "min": minimum,
                        "25%": _quietly(lambda: series.quantile(0.25, interpolation="linear")),
                        "50%": _quietly(lambda: series.quantile(0.5, interpolation="linear")),
                        "75%": _quietly(lambda: series.quantile(0.75, interpolation="linear")),
                        "max": maximum,
                    },
                )
            )
        elif not temporal:
            counts = _quietly(
                lambda: series.drop_nulls().value_counts(sort=True).head(TOP_VALUES).rows()
            )
            if counts:
                top = tuple((row[0], int(row[1])) for row in counts)
        distinct = _quietly(series.drop_nulls().n_unique)
        summaries.append(
            _Column(
                name=str(column),
                dtype=str(dtype),
                null_count=nulls,
                distinct=int(distinct) if distinct is not None else None,
                numeric=numeric,
                minimum=minimum,
                maximum=maximum,
                mean=mean,
                top=top,
            )
        )
    sample = tuple(tuple(row) for row in df.select(shown).head(sample_rows).rows())
    return _Frame(
        library="polars",
        rows=int(df.height),
        columns=tuple(str(c) for c in names),
        summaries=tuple(summaries),
        index_name=None,
        sample=sample,
        describe=tuple(describe),
    )


def _polars_fingerprint(df: Any, digest: Any) -> None:
    if type(df).__name__ == "Series":
        df = df.to_frame()
    schema = [(str(name), str(dtype)) for name, dtype in df.schema.items()]
    digest.update(repr(("polars", df.shape, schema)).encode())
    part = df
    if df.height > FULL_HASH_ROWS:
        part = df.gather_every(max(1, df.height // SAMPLE_HASH_ROWS))
    try:
        digest.update(part.hash_rows().to_numpy().tobytes())
    except Exception:  # noqa: BLE001 - nested or object columns: hash their text instead
        digest.update(_safe_repr(part.head(200), 200_000).encode("utf-8", "replace"))
        digest.update(_safe_repr(part.tail(200), 200_000).encode("utf-8", "replace"))


# -- rendering --------------------------------------------------------------------------


def _render(frame: _Frame, name: str, max_columns: int) -> str:
    total_columns = len(frame.columns)
    lines = [
        f"DataFrame `{name}` ({frame.library}): {_count(frame.rows, 'row')} × "
        f"{_count(total_columns, 'column')}",
        "",
        "Columns:",
    ]
    for column in frame.summaries:
        lines.append("- " + _column_line(column, frame.rows))
    hidden = total_columns - len(frame.summaries)
    if hidden > 0:
        more = ", ".join(f"`{c}`" for c in frame.columns[len(frame.summaries):][:20])
        tail = ", …" if hidden > 20 else ""
        lines.append(f"- +{hidden:,} more columns: {more}{tail}")
    if frame.sample:
        header = [c.name for c in frame.summaries]
        if frame.index_name is not None:
            header = [frame.index_name] + header
        lines += ["", f"First {len(frame.sample)} of {frame.rows:,} rows:", ""]
        lines += _markdown_table(header, frame.sample)
    if frame.describe:
        lines += ["", "Numeric columns (describe):", ""]
        header = ["stat"] + [column for column, _ in frame.describe]
        rows = [
            tuple([stat] + [stats.get(stat) for _, stats in frame.describe])
            for stat in DESCRIBE_STATS
        ]
        lines += _markdown_table(header, rows)
    if hidden > 0:
        lines += ["", f"(Only the first {max_columns} columns are described.)"]
    return "\n".join(lines)


def _column_line(column: _Column, rows: int) -> str:
    share = (100.0 * column.null_count / rows) if rows else 0.0
    parts = [f"`{column.name}` {column.dtype}", f"nulls {share:.1f}%"]
    if column.distinct is not None:
        parts.append(f"{column.distinct:,} distinct")
    if column.minimum is not None or column.maximum is not None:
        parts.append(f"min {_cell(column.minimum)}, max {_cell(column.maximum)}")
    if column.mean is not None:
        parts.append(f"mean {_cell(column.mean)}")
    if column.top:
        parts.append("top " + ", ".join(f"{_cell(v)} ({n:,})" for v, n in column.top))
    return " · ".join(parts)


def _markdown_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> list[str]:
    lines = ["| " + " | ".join(_cell(h) for h in header) + " |"]
    lines.append("|" + "|".join("---" for _ in header) + "|")
    for row in rows:
        lines.append("| " + " | ".join(_cell(value) for value in row) + " |")
    return lines


def _cell(value: Any) -> str:
    """A short, one-line, table-safe text for a value."""
    if value is None:
        return ""
    if isinstance(value, float):
        text = f"{value:.6g}"
    else:
        try:
            text = str(value)
        except Exception:  # noqa: BLE001 - a value that cannot print still needs a cell
            text = f"<{type(value).__name__}>"
    text = text.replace("\r", " ").replace("\n", " ").replace("|", "\\|")
    if len(text) > MAX_CELL_CHARS:
        text = text[: MAX_CELL_CHARS - 1] + "…"
    return text


# -- helpers ----------------------------------------------------------------------------


def _quietly(compute: Any) -> Any:
    """``compute()``, or None when this column cannot answer (mixed or odd types)."""
    try:
        return compute()
    except Exception:  # noqa: BLE001 - one odd column must not spoil the summary
        return None


def _count(number: int, thing: str) -> str:
    return f"{number:,} {thing}{'' if number == 1 else 's'}"


def _type_name(obj: Any) -> str:
    cls = type(obj)
    if cls.__module__ == "builtins":
        return cls.__qualname__
    return f"{cls.__module__}.{cls.__qualname__}"


def _cut_middle(text: str, max_chars: int) -> str:
    if len(text) <= max_chars:
        return text
    keep = max(0, max_chars - 60)
    head, tail = text[: keep * 3 // 4], text[len(text) - keep // 4 :] if keep // 4 else ""
    return f"{head}\n[… {len(text) - len(head) - len(tail):,} characters left out …]\n{tail}"


def _safe_repr(obj: Any, max_chars: int) -> str:
    """A repr that never runs away on huge containers and never raises."""
    try:
        if isinstance(obj, _CONTAINERS) and len(obj) > LARGE_CONTAINER_ITEMS:
            text = _shortener(max_chars).repr(obj)  # elides items instead of building it all
        else:
            text = repr(obj)
    except Exception as error:  # noqa: BLE001 - a broken __repr__ is still attachable
        text = f"<{_type_name(obj)} object; its repr failed: {type(error).__name__}>"
    return _cut_middle(text, max_chars)


def _shortener(max_chars: int) -> reprlib.Repr:
    shortener = reprlib.Repr()
    shortener.maxlevel = 6
    shortener.maxlist = shortener.maxtuple = shortener.maxset = LARGE_CONTAINER_ITEMS
    shortener.maxfrozenset = shortener.maxdeque = shortener.maxarray = LARGE_CONTAINER_ITEMS
    shortener.maxdict = LARGE_CONTAINER_ITEMS
    shortener.maxstring = max(40, max_chars)
    shortener.maxlong = 400
    shortener.maxother = max(40, max_chars)
    return shortener
