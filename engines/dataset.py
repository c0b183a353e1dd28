"""The Kaputt data-set layout: records, reader, writer and checker.

``query-{split}.parquet`` and ``reference-{split}.parquet`` under a data-set root,
image paths relative to that root (DESIGN.md §3). Synthetic sets add columns
(defect-mask path, frame path, tray corners); readers keep them in ``extra``.

Decisions the layout leaves open:

- Rows are numbered from 0, as pyarrow (and ``pandas.read_parquet(...).iloc``) index them.
- A split exists when its query file exists. A missing reference file means the split
  has no reference images: the reader returns none, the checker warns once.
- A defective item may carry no defect types (the real data has such rows); defect types
  on a non-defective item, or a major defect that is not a defect, are errors.
- ``defect_types`` is read from a comma-separated string or a list of strings, and is
  returned (and written) in taxonomy order.
- An item mask must be single-channel and the size of its tray image or its item crop.
- The reader checks that every path exists and starts like an image OpenCV can decode
  (a header read, cheap); only the checker decodes whole images, since that is slow.
"""

from __future__ import annotations

import os
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, Callable, Iterable, Iterator, Literal, Mapping, Sequence

import cv2
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from engines.files import DEFAULT_MODE
from engines.taxonomy import DEFECT_TYPES, MATERIALS, SPLITS, format_defect_types, parse_defect_types

QUERY_COLUMNS: tuple[str, ...] = (
    "capture_id", "item_identifier", "item_material", "defect", "major_defect",
    "defect_types", "query_image", "query_crop", "query_mask",
)
REFERENCE_COLUMNS: tuple[str, ...] = (
    "item_identifier", "reference_image", "reference_crop", "reference_mask",
)
# (tray image, item crop, item mask) columns of each file.
QUERY_PATH_COLUMNS: tuple[str, str, str] = ("query_image", "query_crop", "query_mask")
REFERENCE_PATH_COLUMNS: tuple[str, str, str] = ("reference_image", "reference_crop", "reference_mask")

ProgressCallback = Callable[[int, int], None]
Severity = Literal["error", "warning"]


def query_file_name(split: str) -> str:
    return f"query-{split}.parquet"


def reference_file_name(split: str) -> str:
    return f"reference-{split}.parquet"


@dataclass(frozen=True)
class QueryRecord:
    capture_id: str
    item_identifier: str
    item_material: str
    defect: bool
    major_defect: bool
    defect_types: tuple[str, ...]
    query_image: str
    query_crop: str
    query_mask: str
    extra: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ReferenceRecord:
    item_identifier: str
    reference_image: str
    reference_crop: str
    reference_mask: str
    extra: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a data set, located as precisely as the checker can."""

    file: Path
    row: int | None
    column: str | None
    message: str
    severity: Severity = "error"

    def __str__(self) -> str:
        location = str(self.file) if self.row is None else f"{self.file}:{self.row}"
        column = f" {self.column}:" if self.column else ""
        severity = " warning:" if self.severity == "warning" else ""
        return f"{location}:{column}{severity} {self.message}"


class DatasetError(ValueError):
    """A data set (or records about to be written) that breaks the Kaputt layout."""

    def __init__(self, file: Path, row: int | None, column: str | None, message: str) -> None:
        self.file = Path(file)
        self.row = row
        self.column = column
        self.reason = message
        parts = [str(self.file)]
        if row is not None:
            parts.append(f"row {row}")
        if column is not None:
            parts.append(f"column {column}")
        super().__init__(": ".join(parts) + f": {message}")

    @classmethod
    def from_problem(cls, problem: Problem) -> DatasetError:
        return cls(problem.file, problem.row, problem.column, problem.message)


@dataclass
class DatasetSplit:
    """The queries and references of one split, with references looked up by item."""

    queries: list[QueryRecord]
    references: list[ReferenceRecord]
    root: Path = Path(".")
    split: str = ""
    _references_by_item: dict[str, list[ReferenceRecord]] = field(
        init=False, repr=False, compare=False, default_factory=dict)

    def __post_init__(self) -> None:
        for reference in self.references:
            self._references_by_item.setdefault(reference.item_identifier, []).append(reference)

    def references_for(self, item_identifier: str) -> list[ReferenceRecord]:
        """Reference records of one item; empty when the item has none."""
        return list(self._references_by_item.get(item_identifier, ()))

    def path(self, relative: str) -> Path:
        """Absolute location of a path stored in the data set."""
        return self.root / relative


# ---------------------------------------------------------------- column schema


@dataclass(frozen=True)
class _ColumnKind:
    description: str
    accepts: Callable[[pa.DataType], bool]


def _is_string_type(data_type: pa.DataType) -> bool:
    if pa.types.is_dictionary(data_type):
        return _is_string_type(data_type.value_type)
    return (pa.types.is_string(data_type) or pa.types.is_large_string(data_type)
            or pa.types.is_string_view(data_type) or pa.types.is_null(data_type))


def _is_string_list_type(data_type: pa.DataType) -> bool:
    return ((pa.types.is_list(data_type) or pa.types.is_large_list(data_type))
            and _is_string_type(data_type.value_type))


_STRING = _ColumnKind("string", _is_string_type)
_BOOL = _ColumnKind("bool", lambda t: pa.types.is_boolean(t) or pa.types.is_null(t))
_DEFECT_TYPES = _ColumnKind("string (comma-separated) or list<string>",
                            lambda t: _is_string_type(t) or _is_string_list_type(t))

_QUERY_KINDS: dict[str, _ColumnKind] = {
    "capture_id": _STRING, "item_identifier": _STRING, "item_material": _STRING,
    "defect": _BOOL, "major_defect": _BOOL, "defect_types": _DEFECT_TYPES,
    "query_image": _STRING, "query_crop": _STRING, "query_mask": _STRING,
}
_REFERENCE_KINDS: dict[str, _ColumnKind] = {name: _STRING for name in REFERENCE_COLUMNS}
assert tuple(_QUERY_KINDS) == QUERY_COLUMNS


@dataclass
class _LoadedTable:
    """Python values of one parquet file; only columns whose type is right are present."""

    file: Path
    num_rows: int
    columns: dict[str, list[Any]]
    extra_columns: dict[str, list[Any]]


def _load_table(file: Path, kinds: Mapping[str, _ColumnKind]) -> tuple[_LoadedTable | None, list[Problem]]:
    try:
        table = pq.read_table(file)
    except (OSError, pa.ArrowException) as error:
        return None, [Problem(file, None, None, f"cannot read parquet file: {error}")]
    problems: list[Problem] = []
    columns: dict[str, list[Any]] = {}
    for name, kind in kinds.items():
        if name not in table.column_names:
            problems.append(Problem(file, None, name, f"missing column; this file needs {', '.join(kinds)}"))
        elif not kind.accepts(table.schema.field(name).type):
            problems.append(Problem(
                file, None, name, f"column type is {table.schema.field(name).type}; must be {kind.description}"))
        else:
            columns[name] = table.column(name).to_pylist()
    extra_columns = {name: table.column(name).to_pylist()
                     for name in table.column_names if name not in kinds}
    return _LoadedTable(file, table.num_rows, columns, extra_columns), problems


# ---------------------------------------------------------------- row validation
# Shared by the writer (on records), the reader (stops at the first error) and the
# checker (collects them all), so all three agree on what a valid row is.


def _defect_types_of(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return parse_defect_types(value)
    return tuple(str(part).strip() for part in value if str(part).strip())


def _canonical_defect_types(types: Iterable[str]) -> tuple[str, ...]:
    present = set(types)
    return tuple(t for t in DEFECT_TYPES if t in present)


def _identifier_problem(file: Path, row: int, column: str, value: Any) -> Problem | None:
    if not isinstance(value, str) or not value.strip():
        return Problem(file, row, column, f"empty or missing value ({value!r}); must be a non-empty string")
    return None


def _flag_problem(file: Path, row: int, column: str, value: Any) -> Problem | None:
    if not isinstance(value, (bool, np.bool_)):
        return Problem(file, row, column, f"{value!r} is not a flag; must be true or false")
    return None


def _query_label_problems(file: Path, row: int, columns: Mapping[str, list[Any]]) -> Iterator[Problem]:
    for name in ("capture_id", "item_identifier"):
        if name in columns and (problem := _identifier_problem(file, row, name, columns[name][row])):
            yield problem
    if "item_material" in columns:
        material = columns["item_material"][row]
        if material not in MATERIALS:
            yield Problem(file, row, "item_material",
                          f"{material!r} is not a material; allowed: {', '.join(MATERIALS)}")
    flags: dict[str, bool | None] = {}
    for name in ("defect", "major_defect"):
        flags[name] = None
        if name in columns:
            value = columns[name][row]
            if problem := _flag_problem(file, row, name, value):
                yield problem
            else:
                flags[name] = bool(value)
    types: tuple[str, ...] = ()
    if "defect_types" in columns:
        types = _defect_types_of(columns["defect_types"][row])
        for unknown in [t for t in types if t not in DEFECT_TYPES]:
            yield Problem(file, row, "defect_types",
                          f"{unknown!r} is not a defect type; allowed: {', '.join(DEFECT_TYPES)}")
    if flags["defect"] is False and flags["major_defect"] is True:
        yield Problem(file, row, "major_defect",
                      "major_defect is true but defect is false; a major defect is a defect")
    if flags["defect"] is False and types:
        yield Problem(file, row, "defect_types",
                      f"defect types {','.join(types)} given but defect is false; "
                      "set defect or clear the types")


def _path_problem(file: Path, row: int, column: str, value: Any, root: Path,
                  check_files: bool) -> Problem | None:
    if not isinstance(value, str) or not value.strip():
        return Problem(file, row, column,
                       f"empty or missing path ({value!r}); must be a path relative to the data-set root")
    if PurePosixPath(value).is_absolute() or os.path.isabs(value):
        return Problem(file, row, column, f"{value!r} is absolute; paths must be relative to the data-set root")
    normalized = os.path.normpath(value)
    if normalized == os.pardir or normalized.startswith(os.pardir + os.sep):
        return Problem(file, row, column, f"{value!r} escapes the data-set root {root}")
    if not check_files:
        return None
    full = root / value
    if not full.exists():
        return Problem(file, row, column, f"{value!r} does not exist ({full})")
    if not full.is_file():
        return Problem(file, row, column, f"{value!r} is not a file ({full})")
    if not cv2.haveImageReader(str(full)):
        return Problem(file, row, column, f"{value!r} is not an image OpenCV can read ({full})")
    return None


def _row_problems(file: Path, loaded_columns: Mapping[str, list[Any]], num_rows: int, root: Path,
                  check_files: bool, path_columns: Sequence[str], is_query: bool) -> Iterator[Problem]:
    first_row_of_capture: dict[str, int] = {}
    capture_ids = loaded_columns.get("capture_id") if is_query else None
    for row in range(num_rows):
        if is_query:
            yield from _query_label_problems(file, row, loaded_columns)
        elif "item_identifier" in loaded_columns:
            if problem := _identifier_problem(file, row, "item_identifier", loaded_columns["item_identifier"][row]):
                yield problem
        if capture_ids is not None and isinstance(capture_ids[row], str) and capture_ids[row]:
            first = first_row_of_capture.setdefault(capture_ids[row], row)
            if first != row:
                yield Problem(file, row, "capture_id",
                              f"duplicate capture_id {capture_ids[row]!r}; first at row {first}")
        for column in path_columns:
            if column in loaded_columns:
                problem = _path_problem(file, row, column, loaded_columns[column][row], root, check_files)
                if problem:
                    yield problem


def _query_row_problems(file: Path, columns: Mapping[str, list[Any]], num_rows: int, root: Path,
                        check_files: bool) -> Iterator[Problem]:
    return _row_problems(file, columns, num_rows, root, check_files, QUERY_PATH_COLUMNS, is_query=True)


def _reference_row_problems(file: Path, columns: Mapping[str, list[Any]], num_rows: int, root: Path,
                            check_files: bool) -> Iterator[Problem]:
    return _row_problems(file, columns, num_rows, root, check_files, REFERENCE_PATH_COLUMNS, is_query=False)


def _raise_first_error(problems: Iterable[Problem]) -> None:
    for problem in problems:
        if problem.severity == "error":
            raise DatasetError.from_problem(problem)


def _require_split(split: str) -> None:
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; allowed: {', '.join(SPLITS)}")


# ---------------------------------------------------------------- writer


def _python_value(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, tuple):
        return list(value)
    return value


def _value_kind(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str):
        return "str"
    if isinstance(value, list) and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value):
        return "floats"
    return "unsupported"


_ARROW_TYPE_OF_KIND: dict[str, pa.DataType] = {
    "bool": pa.bool_(), "int": pa.int64(), "float": pa.float64(), "str": pa.string(),
    "floats": pa.list_(pa.float64()),
}


def _extra_arrays(file: Path, extras: Sequence[Mapping[str, Any]],
                  reserved: Sequence[str]) -> dict[str, pa.Array]:
    if not extras:
        return {}
    names = list(extras[0])
    for row, extra in enumerate(extras):
        if set(extra) != set(names):
            raise DatasetError(file, row, None,
                               f"extra columns {sorted(extra)} differ from the first record's {sorted(names)}; "
                               "every record of a split needs the same extra keys")
    arrays: dict[str, pa.Array] = {}
    for name in names:
        if name in reserved:
            raise DatasetError(file, None, name, "extra column has the name of a Kaputt column; rename it")
        values = [_python_value(extra[name]) for extra in extras]
        kinds = {_value_kind(value) for value in values} - {None}
        if kinds == {"int", "float"}:
            kinds = {"float"}
        if "unsupported" in kinds or len(kinds) > 1:
            first_kind = next(_value_kind(value) for value in values if value is not None)
            row = next(row for row, value in enumerate(values)
                       if _value_kind(value) not in (None, first_kind) or _value_kind(value) == "unsupported")
            raise DatasetError(file, row, name,
                               f"{values[row]!r}: extra values must all be str, bool, int, float or "
                               f"a list of floats, of one kind per column; found {', '.join(sorted(kinds))}")
        arrow_type = _ARROW_TYPE_OF_KIND[kinds.pop()] if kinds else pa.string()
        arrays[name] = pa.array(values, type=arrow_type)
    return arrays


def _write_table_to_temp(table: pa.Table, target: Path) -> Path:
    descriptor, temp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    temp = Path(temp_name)
    try:
        with os.fdopen(descriptor, "wb") as stream:
            pq.write_table(table, stream)
            stream.flush()
            os.fsync(stream.fileno())
        os.chmod(temp, DEFAULT_MODE)  # data sets are shared; mkstemp alone gives 0600
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    return temp


def _column_type(name: str) -> pa.DataType:
    return pa.bool_() if name in ("defect", "major_defect") else pa.string()


def _query_table(file: Path, root: Path, queries: Sequence[QueryRecord]) -> pa.Table:
    columns = {name: [getattr(record, name) for record in queries] for name in QUERY_COLUMNS}
    _raise_first_error(_query_row_problems(file, columns, len(queries), root, check_files=False))
    columns["defect"] = [bool(value) for value in columns["defect"]]
    columns["major_defect"] = [bool(value) for value in columns["major_defect"]]
    columns["defect_types"] = [format_defect_types(list(_defect_types_of(value)))
                               for value in columns["defect_types"]]
    arrays = {name: pa.array(columns[name], type=_column_type(name)) for name in QUERY_COLUMNS}
    arrays.update(_extra_arrays(file, [record.extra for record in queries], QUERY_COLUMNS))
    return pa.table(arrays)


def _reference_table(file: Path, root: Path, references: Sequence[ReferenceRecord]) -> pa.Table:
    columns = {name: [getattr(record, name) for record in references] for name in REFERENCE_COLUMNS}
    _raise_first_error(_reference_row_problems(file, columns, len(references), root, check_files=False))
    arrays: dict[str, pa.Array] = {name: pa.array(columns[name], type=pa.string()) for name in REFERENCE_COLUMNS}
    arrays.update(_extra_arrays(file, [record.extra for record in references], REFERENCE_COLUMNS))
    return pa.table(arrays)


def write_split(root: Path, split: str, queries: Sequence[QueryRecord],
                references: Sequence[ReferenceRecord]) -> None:
    """Write one split's query and reference files, validated, each replaced atomically.

    Labels are checked against the taxonomy and paths must be relative to ``root``
    (files are not required to exist yet). Raises DatasetError naming file, row and column.
    """
    _require_split(split)
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    query_file = root / query_file_name(split)
    reference_file = root / reference_file_name(split)
    tables = [(query_file, _query_table(query_file, root, queries)),
              (reference_file, _reference_table(reference_file, root, references))]
    temps: list[tuple[Path, Path]] = []
    try:
        for target, table in tables:
            temps.append((_write_table_to_temp(table, target), target))
        for temp, target in temps:
            os.replace(temp, target)
    finally:
        for temp, _ in temps:
            temp.unlink(missing_ok=True)


# ---------------------------------------------------------------- reader


def _query_records(table: _LoadedTable) -> list[QueryRecord]:
    c = table.columns
    return [
        QueryRecord(
            capture_id=c["capture_id"][row],
            item_identifier=c["item_identifier"][row],
            item_material=c["item_material"][row],
            defect=bool(c["defect"][row]),
            major_defect=bool(c["major_defect"][row]),
            defect_types=_canonical_defect_types(_defect_types_of(c["defect_types"][row])),
            query_image=c["query_image"][row],
            query_crop=c["query_crop"][row],
            query_mask=c["query_mask"][row],
            extra={name: values[row] for name, values in table.extra_columns.items()},
        )
        for row in range(table.num_rows)
    ]


def _reference_records(table: _LoadedTable) -> list[ReferenceRecord]:
    c = table.columns
    return [
        ReferenceRecord(
            item_identifier=c["item_identifier"][row],
            reference_image=c["reference_image"][row],
            reference_crop=c["reference_crop"][row],
            reference_mask=c["reference_mask"][row],
            extra={name: values[row] for name, values in table.extra_columns.items()},
        )
        for row in range(table.num_rows)
    ]


def _load_checked(file: Path, kinds: Mapping[str, _ColumnKind], root: Path, check_files: bool,
                  row_problems: Callable[..., Iterator[Problem]]) -> _LoadedTable:
    table, problems = _load_table(file, kinds)
    _raise_first_error(problems)
    assert table is not None
    _raise_first_error(row_problems(file, table.columns, table.num_rows, root, check_files))
    return table


def read_split(root: Path, split: str, check_files: bool = True) -> DatasetSplit:
    """Read one split; raises DatasetError on the first problem, naming file, row and column.

    With ``check_files`` every path must exist and look like an image (header only).
    A split without a reference file has no references.
    """
    _require_split(split)
    root = Path(root)
    query_file = root / query_file_name(split)
    if not query_file.is_file():
        raise DatasetError(query_file, None, None, f"no such file; split {split!r} is not in {root}")
    queries = _load_checked(query_file, _QUERY_KINDS, root, check_files, _query_row_problems)
    reference_file = root / reference_file_name(split)
    references: list[ReferenceRecord] = []
    if reference_file.exists():
        loaded = _load_checked(reference_file, _REFERENCE_KINDS, root, check_files, _reference_row_problems)
        references = _reference_records(loaded)
    return DatasetSplit(_query_records(queries), references, root=root, split=split)


def available_splits(root: Path) -> list[str]:
    """Splits of a data set, in taxonomy order: those with a query file."""
    return [split for split in SPLITS if (Path(root) / query_file_name(split)).is_file()]


def read_dataset(root: Path, check_files: bool = True) -> dict[str, DatasetSplit]:
    """Every split present under ``root``, by name."""
    return {split: read_split(root, split, check_files) for split in available_splits(root)}


# ---------------------------------------------------------------- checker


@dataclass(frozen=True)
class _ImageRow:
    """The decodable paths of one row, kept for the image pass of the checker."""

    file: Path
    row: int
    paths: Mapping[str, str]
    image_column: str
    crop_column: str
    mask_column: str


def _decoded_shape(path: Path) -> tuple[int, ...] | None:
    image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    return None if image is None else tuple(image.shape)


def _image_problems(root: Path, rows: Sequence[_ImageRow], progress: ProgressCallback | None,
                    workers: int) -> list[Problem]:
    unique = sorted({root / relative for row in rows for relative in row.paths.values()})
    shapes: dict[Path, tuple[int, ...] | None] = {}
    if progress:
        progress(0, len(unique))
    with ThreadPoolExecutor(max_workers=workers) as pool:  # OpenCV decodes without the GIL
        for done, (path, shape) in enumerate(zip(unique, pool.map(_decoded_shape, unique)), start=1):
            shapes[path] = shape
            if progress:
                progress(done, len(unique))
    problems: list[Problem] = []
    for row in rows:
        for column, relative in row.paths.items():
            if shapes[root / relative] is None:
                problems.append(Problem(row.file, row.row, column,
                                        f"{relative!r} cannot be decoded ({root / relative})"))
        mask_path = row.paths.get(row.mask_column)
        mask_shape = shapes.get(root / mask_path) if mask_path else None
        if mask_shape is None:
            continue
        if len(mask_shape) == 3 and mask_shape[2] != 1:
            problems.append(Problem(row.file, row.row, row.mask_column,
                                    f"mask {mask_path!r} has {mask_shape[2]} channels; must be single-channel"))
        partner_shapes = {column: shapes[root / row.paths[column]] if column in row.paths else None
                          for column in (row.image_column, row.crop_column)}
        if None in partner_shapes.values():
            continue  # an image already reported as broken; the mask cannot be judged against it
        partner_sizes = {column: shape[:2] for column, shape in partner_shapes.items() if shape is not None}
        if mask_shape[:2] not in partner_sizes.values():
            sizes = ", ".join(f"{column} is {w}x{h}" for column, (h, w) in partner_sizes.items())
            problems.append(Problem(row.file, row.row, row.mask_column,
                                    f"mask {mask_path!r} is {mask_shape[1]}x{mask_shape[0]} but {sizes}; "
                                    "it must match its image or its crop"))
    return problems


def _image_rows(table: _LoadedTable, bad_cells: set[tuple[int | None, str | None]],
                path_columns: tuple[str, str, str]) -> list[_ImageRow]:
    rows: list[_ImageRow] = []
    for row in range(table.num_rows):
        paths = {column: table.columns[column][row] for column in path_columns
                 if column in table.columns and (row, column) not in bad_cells}
        if paths:
            rows.append(_ImageRow(table.file, row, paths, *path_columns))
    return rows


def _first_rows(values: Sequence[Any]) -> dict[str, int]:
    first: dict[str, int] = {}
    for row, value in enumerate(values):
        if isinstance(value, str) and value:
            first.setdefault(value, row)
    return first


def check_dataset(root: Path, check_images: bool = True, progress: ProgressCallback | None = None,
                  workers: int | None = None) -> list[Problem]:
    """Every problem in a data set, errors and warnings, in file order.

    ``check_images`` decodes every image and mask (slow: ``progress(done, total)``
    is called per file); without it paths are checked for existence and image headers.
    """
    root = Path(root)
    if not root.exists():
        return [Problem(root, None, None, "data-set root does not exist")]
    if not root.is_dir():
        return [Problem(root, None, None, "data-set root is not a directory")]
    problems: list[Problem] = []
    known_files = {name(split) for split in SPLITS for name in (query_file_name, reference_file_name)}
    for stray in sorted(root.glob("*.parquet")):
        if stray.name not in known_files:
            problems.append(Problem(stray, None, None,
                                    f"not a Kaputt split file, ignored; splits are {', '.join(SPLITS)}",
                                    "warning"))
    splits = available_splits(root)
    for split in SPLITS:
        if split not in splits and (root / reference_file_name(split)).exists():
            problems.append(Problem(root / reference_file_name(split), None, None,
                                    f"reference file without {query_file_name(split)}, ignored", "warning"))
    if not splits:
        problems.append(Problem(root, None, None,
                                "no split found; expected " + ", ".join(query_file_name(s) for s in SPLITS)))
        return problems

    first_capture: dict[str, tuple[Path, int]] = {}
    items_of_split: dict[str, dict[str, tuple[Path, int]]] = {}
    image_rows: list[_ImageRow] = []
    for split in splits:
        items: dict[str, tuple[Path, int]] = {}
        query_file = root / query_file_name(split)
        queries, file_problems = _load_table(query_file, _QUERY_KINDS)
        problems.extend(file_problems)
        query_items: dict[str, int] = {}
        if queries is not None:
            row_problems = list(_query_row_problems(query_file, queries.columns, queries.num_rows, root, True))
            problems.extend(row_problems)
            image_rows += _image_rows(queries, {(p.row, p.column) for p in row_problems}, QUERY_PATH_COLUMNS)
            for capture_id, row in _first_rows(queries.columns.get("capture_id", [])).items():
                if capture_id in first_capture:
                    other_file, other_row = first_capture[capture_id]
                    problems.append(Problem(query_file, row, "capture_id",
                                            f"duplicate capture_id {capture_id!r}; also at {other_file}:{other_row}"))
                else:
                    first_capture[capture_id] = (query_file, row)
            query_items = _first_rows(queries.columns.get("item_identifier", []))
            items.update({item: (query_file, row) for item, row in query_items.items()})

        reference_file = root / reference_file_name(split)
        if not reference_file.exists():
            problems.append(Problem(reference_file, None, None,
                                    f"no reference file; the {split} queries have no reference images",
                                    "warning"))
        else:
            references, file_problems = _load_table(reference_file, _REFERENCE_KINDS)
            problems.extend(file_problems)
            if references is not None:
                row_problems = list(_reference_row_problems(
                    reference_file, references.columns, references.num_rows, root, True))
                problems.extend(row_problems)
                image_rows += _image_rows(references, {(p.row, p.column) for p in row_problems},
                                          REFERENCE_PATH_COLUMNS)
                if "item_identifier" in references.columns:
                    reference_items = _first_rows(references.columns["item_identifier"])
                    for item, row in reference_items.items():
                        items.setdefault(item, (reference_file, row))
                    for item, row in query_items.items():
                        if item not in reference_items:
                            problems.append(Problem(query_file, row, "item_identifier",
                                                    f"item {item!r} has no reference in {reference_file.name}",
                                                    "warning"))
        items_of_split[split] = items

    for index, split in enumerate(splits):
        for earlier in splits[:index]:
            for item in sorted(items_of_split[split].keys() & items_of_split[earlier].keys()):
                file, row = items_of_split[split][item]
                other_file, other_row = items_of_split[earlier][item]
                problems.append(Problem(file, row, "item_identifier",
                                        f"item {item!r} is also in split {earlier} ({other_file}:{other_row}); "
                                        "an item belongs to one split only"))

    if check_images and image_rows:
        problems.extend(_image_problems(root, image_rows, progress, workers or min(8, os.cpu_count() or 1)))
    return _in_file_order(problems)


def _in_file_order(problems: list[Problem]) -> list[Problem]:
    """Group problems by file (in order of first mention), then by row, file-level first."""
    file_order: dict[Path, int] = {}
    for problem in problems:
        file_order.setdefault(problem.file, len(file_order))
    return sorted(problems, key=lambda p: (file_order[p.file], p.row is not None, p.row or 0))
