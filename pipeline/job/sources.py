"""Review sources: folders of *.txt review files and Parquet files, read through Beam's FileSystems.

At launch, `plan_inputs` resolves every INPUT argument (folder, file or glob, local or gs://),
checks that each matches something, and reads the Parquet footers so that a missing or non-string
text column is a configuration error naming the file before any work starts. At run time the
transforms below re-match text-file patterns on the workers (so a folder of millions of files is
never listed into the job graph) and read Parquet files one row group at a time (so the groups of
one big file spread over the workers), in record batches.

A folder that holds no review file but only markers (`_SUCCESS`, and any name starting with `_`
or `.`) is a day with nothing to score: its plan has no files and no reviews, and the job still
runs, to a zero-row output with a summary (docs/scoring.md, "A day with no reviews"). A folder with
nothing at all in it is refused, as a likely wrong path.

Reviews travel as ReviewBatch elements (an Arrow table of a few thousand rows), not one element per
review: Beam's per-element work at every step costs more than scoring a short review
(BENCHMARKS.md#where-the-time-goes). Every record read leaves in exactly one ReviewBatch row or as
one Failure: nothing is dropped silently.
"""

from __future__ import annotations

import os
import posixpath
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import NamedTuple

import apache_beam as beam
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from apache_beam.io.filesystems import FileSystems

from pipeline.job.locations import InputError, check_input_exists, is_glob
from schemas.output import (
    DECODE_STAGE,
    ERROR,
    READ_STAGE,
    REVIEW_ID,
    SOURCE,
    STAGE,
    TEXT,
    TEXT_FILE_FIELDS,
    SchemaError,
)

FAILED = "failed"

TEXT_SUFFIX = ".txt"
PARQUET_SUFFIX = ".parquet"
READ_BUFFER_BYTES = 8 << 20
MARKER_PREFIXES = ("_", ".")
"""A file or folder whose name starts with one of these is never read for reviews' sake (`is_marker`)."""


class Review(NamedTuple):
    """A review read from a text file, on its way to a ReviewBatch."""

    review_id: str
    source: str
    text: str


class Failure(NamedTuple):
    """A record that cannot be scored: one row of the error files."""

    review_id: str | None
    source: str
    stage: str
    """One of schemas/output_names.py's STAGES."""
    error: str

    def row(self) -> dict[str, str | None]:
        """The error file's row."""
        return {REVIEW_ID: self.review_id, SOURCE: self.source, STAGE: self.stage, ERROR: self.error}


class ReviewBatch(NamedTuple):
    """Reviews read together: every input column, the id column filled in, and where each row came from."""

    table: pa.Table
    """Every input column, passed through to the scored rows unchanged (a missing or null string id filled in)."""
    ids: pa.Array
    """Each row's review id as a string, for error rows."""
    sources: pa.Array
    """Each row's file (a Parquet batch repeats its file's path)."""

    def __len__(self) -> int:
        return self.table.num_rows

    def filter(self, keep: pa.Array) -> ReviewBatch:
        return ReviewBatch(self.table.filter(keep), self.ids.filter(keep), self.sources.filter(keep))

    def failures(self, rows, stage: str, error: str) -> list[Failure]:
        """A Failure for each of `rows` (indices), naming the review and its file."""
        return [Failure(self.ids[i].as_py(), self.sources[i].as_py(), stage, error) for i in rows]


def batch_of_reviews(reviews: list[Review]) -> ReviewBatch:
    """Reviews read one per file, as one batch."""
    rows = [{REVIEW_ID: r.review_id, SOURCE: r.source, TEXT: r.text} for r in reviews]
    table = pa.Table.from_pylist(rows, schema=pa.schema(TEXT_FILE_FIELDS))
    return ReviewBatch(table, table.column(REVIEW_ID).combine_chunks(), table.column(SOURCE).combine_chunks())


@dataclass(frozen=True)
class TextPattern:
    root: str
    """review_id is the path relative to this folder."""
    pattern: str


@dataclass(frozen=True)
class InputPlan:
    text_patterns: list[TextPattern] = field(default_factory=list)
    parquet_files: list[str] = field(default_factory=list)
    schema: pa.Schema = field(default_factory=lambda: pa.schema([]))
    """The union of every input's columns: the scored output's pass-through columns."""
    reviews: int = 0
    """Records the inputs hold at launch (Parquet footers' row counts, review files matched): the job's size."""
    patterns: list[str] = field(default_factory=list)
    """What each input was matched with: a folder's recursive *.txt and *.parquet patterns, a file or glob itself."""
    text_files: int = 0
    """Review files matched at launch."""


def _is_directory(path: str) -> bool:
    if path.endswith("/"):
        return True
    if "://" not in path:
        return os.path.isdir(path)
    # On object stores a "folder" is a prefix with something below it.
    return bool(FileSystems.match([path.rstrip("/") + "/*"], limits=[1])[0].metadata_list)


def _match(pattern: str) -> list[str]:
    try:
        return sorted(m.path for m in FileSystems.match([pattern])[0].metadata_list)
    except Exception:  # Beam raises BeamIOError for "nothing matched" and for unreadable prefixes alike
        return []


def plan_inputs(inputs: list[str], text_column: str = TEXT, id_column: str = REVIEW_ID) -> InputPlan:
    text_patterns: list[TextPattern] = []
    parquet_files: list[str] = []
    text_files = 0
    patterns: list[str] = []
    for raw in inputs:
        path = raw
        check_input_exists(path)
        if not is_glob(path) and _is_directory(path):
            root = path.rstrip("/")
            text_pattern = TextPattern(root, FileSystems.join(root, "**" + TEXT_SUFFIX))
            patterns += [text_pattern.pattern, FileSystems.join(root, "**" + PARQUET_SUFFIX)]
            found_parquet = _match(patterns[-1])
            found_text = len(_match(text_pattern.pattern))
            if found_text:
                text_patterns.append(text_pattern)
                text_files += found_text
            elif not found_parquet:
                check_empty_day(raw, root)
            parquet_files.extend(found_parquet)
            continue
        patterns.append(path)
        matches = _match(path)
        if not matches:
            raise InputError(f"input {raw} {'matches no file' if is_glob(path) else 'does not exist'}")
        for match in matches:
            if match.endswith(PARQUET_SUFFIX):
                parquet_files.append(match)
            elif match.endswith(TEXT_SUFFIX):
                text_patterns.append(TextPattern(posixpath.dirname(match), match))
                text_files += 1
            elif not is_glob(path):
                raise InputError(f"input {raw} is neither a folder, a *.txt review file nor a *.parquet file")
    parquet_files = sorted(set(parquet_files))
    footers = [parquet_footer(f, text_column) for f in parquet_files]
    schemas = [pa.schema(TEXT_FILE_FIELDS)] if text_patterns else []
    schemas += [schema for schema, _ in footers]
    try:
        schema = pa.unify_schemas(schemas) if schemas else empty_day_schema(text_column, id_column)
    except (pa.ArrowInvalid, pa.ArrowTypeError) as e:
        raise SchemaError(f"input columns of the same name have different types: {e}") from None
    if parquet_files and id_column not in schema.names:
        schema = schema.append(pa.field(id_column, pa.string()))
    records = text_files + sum(rows for _, rows in footers)
    return InputPlan(text_patterns, parquet_files, schema, records, patterns, text_files)


def relative_path(path: str, root: str) -> str:
    """A matched file's path below the folder it was matched in (a text review's id)."""
    return posixpath.relpath(path, root) if "://" not in path else path[len(root) :].lstrip("/")


def is_marker(name: str) -> bool:
    """Is this file (`name`: its path below the input folder) one that is never a review? One of the
    path's names starts with `_` or `.`, as export jobs' completion markers (_SUCCESS), temporary
    folders and checksums do, and as pyarrow and Spark skip when they read a dataset."""
    return any(part.startswith(MARKER_PREFIXES) for part in name.split("/"))


def check_empty_day(raw: str, root: str) -> None:
    """A folder with no review file: an empty day when it holds only markers (its export finished with
    nothing to export), an InputError otherwise.

    A folder with nothing at all in it is refused: an export that finished writes its marker, so an
    empty folder is more likely a wrong path or date than a day without reviews. A folder holding
    other files (CSV, JSON) is not what the job reads.
    """
    files = [relative_path(path, root) for path in _match(FileSystems.join(root, "**"))]
    if not files:
        raise InputError(
            f"input {raw} holds no *.txt review files and no *.parquet files: it is empty, without even the "
            "_SUCCESS marker of an export that found nothing; check the path (a folder holding only _SUCCESS "
            "is scored as a day with no reviews)"
        )
    others = [name for name in files if not is_marker(name)]
    if others:
        raise InputError(
            f"input {raw} holds no *.txt review files and no *.parquet files (it holds {others[0]}"
            f"{f' and {len(others) - 1:,} more' if len(others) > 1 else ''}); point it at the reviews"
        )


def empty_day_schema(text_column: str, id_column: str) -> pa.Schema:
    """The pass-through columns of a job that found no review file: the id and text columns the job
    names (the columns the inputs would have brought are unknown), so a zero-row output still has them."""
    return pa.schema([pa.field(name, pa.string()) for name in dict.fromkeys((id_column, text_column))])


def parquet_footer(path: str, text_column: str) -> tuple[pa.Schema, int]:
    """The file's Arrow schema, checked to hold a string text column, and its row count."""
    try:
        with FileSystems.open(path) as f:
            footer = pq.ParquetFile(f)
            schema, rows = footer.schema_arrow, footer.metadata.num_rows
    except Exception as e:
        raise InputError(f"{path} is not a readable Parquet file: {e}") from None
    if text_column not in schema.names:
        raise InputError(f"{path} has no text column {text_column!r} (columns: {', '.join(schema.names)})")
    kind = schema.field(text_column).type
    if not (pa.types.is_string(kind) or pa.types.is_large_string(kind)):
        raise InputError(f"{path}: text column {text_column!r} has type {kind}, not string")
    return schema.remove_metadata(), rows


class ExpandTextPattern(beam.DoFn):
    """(root, pattern) to (root, path) for every review file that matches, on the workers."""

    def process(self, text_pattern: TextPattern) -> Iterator[tuple[str, str]]:
        for path in _match(text_pattern.pattern):
            yield text_pattern.root, path


class ReadReviewFile(beam.DoFn):
    """One review per file: strict UTF-8 (a byte-order mark is dropped), else a Failure naming the file."""

    def process(self, root_and_path: tuple[str, str]) -> Iterator[Review | Failure]:
        root, path = root_and_path
        review_id = relative_path(path, root)
        try:
            with FileSystems.open(path) as f:
                data = f.read()
        except Exception as e:
            yield Failure(review_id, path, READ_STAGE, f"cannot read file: {e}")
            return
        if b"\0" in data:
            yield Failure(review_id, path, DECODE_STAGE, "binary file (contains NUL bytes), not a text review")
            return
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError as e:
            yield Failure(review_id, path, DECODE_STAGE, f"not valid UTF-8: {e.reason} at byte {e.start}")
            return
        yield Review(review_id, path, text)


class ParquetRowGroup(NamedTuple):
    path: str
    index: int
    first_row: int
    """Row number of the group's first row within the file (ids are FILE:ROW)."""
    rows: int


class ExpandParquetRowGroups(beam.DoFn):
    """A Parquet file to its row groups, so that the groups of one big file spread over the workers."""

    def process(self, path: str) -> Iterator[ParquetRowGroup | Failure]:
        try:
            with FileSystems.open(path) as f:
                metadata = pq.ParquetFile(f).metadata
        except Exception as e:
            yield Failure(None, path, READ_STAGE, f"Parquet footer unreadable: {e}")
            return
        first = 0
        for index in range(metadata.num_row_groups):
            rows = metadata.row_group(index).num_rows
            yield ParquetRowGroup(path, index, first, rows)
            first += rows


class ReadParquetRowGroup(beam.DoFn):
    """Rows of one row group, streamed in record batches.

    The footer said how many rows the group holds, so when the group breaks part-way every row not
    read becomes an error row of its own: a damaged file is accounted for row by row, never silently
    shortened.
    """

    def __init__(self, text_column: str, id_column: str, batch_rows: int):
        self.text_column = text_column
        self.id_column = id_column
        self.batch_rows = batch_rows

    def process(self, group: ParquetRowGroup | Failure) -> Iterator[ReviewBatch | Failure]:
        if isinstance(group, Failure):
            yield group
            return
        row = group.first_row
        try:
            with FileSystems.open(group.path) as f:
                # A buffered stream decodes the row group a few MB at a time; without it pyarrow reads
                # each whole column chunk first, so memory would grow with the writer's row group size.
                parquet = pq.ParquetFile(f, buffer_size=READ_BUFFER_BYTES, pre_buffer=False)
                for batch in parquet.iter_batches(batch_size=self.batch_rows, row_groups=[group.index]):
                    yield self._reviews(group.path, row, pa.Table.from_batches([batch]))
                    row += batch.num_rows
        except Exception as e:
            error = f"Parquet row group {group.index} unreadable from row {row}: {e}"
            for lost in range(row, group.first_row + group.rows):
                yield Failure(f"{posixpath.basename(group.path)}:{lost}", group.path, READ_STAGE, error)

    def _reviews(self, path: str, first_row: int, table: pa.Table) -> ReviewBatch:
        """The batch and its review ids: the id column's values, FILE:ROW where it has none or a null.

        A missing or string id column is filled in the output too; an id column of another type
        passes through unchanged.
        """
        rows = table.num_rows
        positional = pc.binary_join_element_wise(
            posixpath.basename(path), pa.array(np.arange(first_row, first_row + rows)).cast(pa.string()), ":"
        )
        if self.id_column not in table.column_names:
            table = table.append_column(self.id_column, positional)
        index = table.column_names.index(self.id_column)
        ids = pc.coalesce(table.column(index).cast(pa.string()), positional).combine_chunks()
        if pa.types.is_string(table.schema.field(index).type):
            table = table.set_column(index, self.id_column, ids)
        return ReviewBatch(table, ids, pa.repeat(pa.scalar(path), rows))


class SplitReviews(beam.DoFn):
    """Reviews go on, to be batched; Failures go to the FAILED output."""

    def process(self, record: Review | Failure):
        yield beam.pvalue.TaggedOutput(FAILED, record) if isinstance(record, Failure) else record


class ReadReviews(beam.PTransform):
    """Every review of an InputPlan, from all its files: a PCollection of ReviewBatch and Failure."""

    def __init__(self, plan: InputPlan, text_column: str, id_column: str, batch_rows: int):
        super().__init__()
        self.plan = plan
        self.text_column = text_column
        self.id_column = id_column
        self.batch_rows = batch_rows

    def expand(self, pipeline: beam.Pipeline):
        reads = []
        if self.plan.text_patterns:
            reviews, failures = (
                pipeline
                | "TextPatterns" >> beam.Create(self.plan.text_patterns)
                | "MatchTextFiles" >> beam.ParDo(ExpandTextPattern())
                | "SpreadTextFiles" >> beam.Reshuffle()
                | "ReadTextFiles" >> beam.ParDo(ReadReviewFile())
                | "SplitTextFailures" >> beam.ParDo(SplitReviews()).with_outputs(FAILED, main="reviews")
            )
            batches = (
                reviews
                | "BatchTextReviews" >> beam.BatchElements(min_batch_size=1, max_batch_size=self.batch_rows)
                | "TextReviewBatches" >> beam.Map(batch_of_reviews)
            )
            reads += [batches, failures]
        if self.plan.parquet_files:
            reads.append(
                pipeline
                | "ParquetFiles" >> beam.Create(self.plan.parquet_files)
                | "ListRowGroups" >> beam.ParDo(ExpandParquetRowGroups())
                | "SpreadRowGroups" >> beam.Reshuffle()
                | "ReadRowGroups" >> beam.ParDo(ReadParquetRowGroup(self.text_column, self.id_column, self.batch_rows))
            )
        if not reads:  # an empty day: nothing to read, and the rest of the graph runs on no records
            return pipeline | "NoReviews" >> beam.Create([])
        return tuple(reads) | "AllReviews" >> beam.Flatten() if len(reads) > 1 else reads[0]
