"""``deepfit predict RUN INPUT -o OUT.csv`` on inputs of any size: read, predict and write
in parts, so memory is bounded by the part, not the input.

A table (CSV / TSV / TXT in pandas chunks, Parquet in pyarrow batches; Excel and NumPy
files are read whole, then predicted in parts), an image file, an image folder (searched
recursively), or a CSV of image paths (read in chunks, its images decoded part by part).
Each part goes through the same ``Run`` methods as ``Run.predictions``, so the file holds
exactly what ``Run.predictions(...).to_frame()`` gives for an input that fits in memory;
what the input holds that training never saw is said once, counted over every part. The
CSV is written to a temporary file beside OUTPUT and renamed at the end
(``atomic_write``): an error part-way leaves no partial file.
"""

from __future__ import annotations

import sys
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Iterator, Optional

import numpy as np
import torch

from deepfit.data.images.batch import ImageList, decode_list
from deepfit.data.images.csvfiles import (CSV_SUFFIXES, LABEL_NAMES, image_column,
                                          listed_image, read_image_csv)
from deepfit.data.images.imageset import Aspects
from deepfit.data.images.load import ImageOptions
from deepfit.data.images.new_images import list_new_images, warn_if_reshaped
from deepfit.data.labels import class_key, renamed
from deepfit.data.sources.chunks import table_chunks
from deepfit.errors import DataError, DataWarning
from deepfit.evaluate.predict import Predictions
from deepfit.files import atomic_write
from deepfit.result import Run

TABLE_ROWS = 100_000  # rows of a table read, predicted and written at a time
IMAGES = 256  # images decoded, predicted and written at a time
REPORT_EVERY_S = 5.0  # a plain progress line this often when stderr is not a terminal


@dataclass
class PredictSummary:
    """What ``predict_file`` wrote: ``rows`` predictions to ``path``; ``warnings``: the
    lines said about the input (each also a ``DataWarning``); ``streamed``: False when
    the input was read whole (Excel, NumPy, a train / val / test image tree)."""

    path: Path
    rows: int
    streamed: bool
    warnings: list[str] = field(default_factory=list)


def predict_file(run: Run, source: str | Path, output: str | Path,
                 batch: Optional[int] = None, stream: Optional[IO[str]] = None,
                 device: Optional[str] = None) -> PredictSummary:
    """Predict every row or image of ``source`` with ``run`` and write the predictions CSV
    ``output`` (ids, the labels if the input has them, predicted class or value, class
    probabilities). ``batch``: rows (tables) or images read at a time; ``stream``: where
    progress goes (default stderr); ``device``: "cuda", "cpu", ... (default: a GPU if
    there is one, with the run's precision and memory layout, as in training)."""
    _place(run, device)
    origin = str(source)
    progress = _Progress(stream or sys.stderr)
    if run.schema.image is None:
        parts, streamed, said = _table_parts(run, Path(source), origin, batch or TABLE_ROWS,
                                             progress)
    else:
        parts, streamed, said = _image_parts(run, Path(source), origin, batch or IMAGES,
                                             progress)
    count = 0

    def write(fh: Any) -> None:
        nonlocal count
        for p in parts:
            frame = p.to_frame()
            if p.task != "regression":
                # The model computes probabilities in float32: written as float32 (the
                # shortest text that reads back to the same float32; 9 digits at most, not
                # float64's 17), they lose nothing and format about twice as fast.
                probs = [f"p_{name}" for name in p.class_names]
                frame[probs] = frame[probs].astype(np.float32)
            fh.write(frame.to_csv(index=False, header=count == 0).encode("utf-8"))
            count += len(p.ids)
            progress.advance(len(p.ids))

    try:
        path = atomic_write(output, write)
    finally:
        progress.close()
    for line in said:
        warnings.warn(line, DataWarning, stacklevel=2)
    return PredictSummary(path, count, streamed, said)


def _place(run: Run, device: Optional[str]) -> None:
    """The fast path of training: the model on the device (in the layout it trained in,
    which ``deepfit.load`` restores), and on a GPU the run's mixed precision; on a CPU
    fp32, as ``Run.predictions``."""
    target = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    run.model.to(target)
    train = run.config.train
    if target.type != "cuda":
        return
    if train.precision in ("bf16", "fp16"):
        run.precision = train.precision


def _table_parts(run: Run, path: Path, origin: str, rows: int, progress: "_Progress"
                 ) -> tuple[Iterator[Predictions], bool, list[str]]:
    pre = run.schema.preprocessor
    text = list(pre.categorical_) + ([run.schema.id_column] if run.schema.id_column else [])
    chunks = table_chunks(path, rows, run.config.data.sheet, text)
    progress.start("rows", chunks.rows)
    said: list[str] = []

    def parts() -> Iterator[Predictions]:
        counts = None
        for part in chunks.parts:
            texts: dict = {}  # categorical columns as text: converted once, used twice
            yield run.frame_predictions(part, origin, first_row=int(part.index[0]), texts=texts)
            counts = pre.unfamiliar_counts(part, counts, texts)
        if counts is not None:
            said.extend(f"{origin}: {line}" for line in pre.unfamiliar_lines(counts))

    return parts(), chunks.streamed, said


def _image_parts(run: Run, path: Path, origin: str, size: int, progress: "_Progress"
                 ) -> tuple[Iterator[Predictions], bool, list[str]]:
    schema, data = run.schema, run.config.data
    multilabel = run.task == "multilabel"
    opts = ImageOptions(size=schema.image.size, resize=schema.image.resize,
                        channels="gray" if schema.image.channels == 1 else "rgb")
    if path.is_file() and path.suffix.lower() in CSV_SUFFIXES:
        files = _image_csv(run, path, size)
    else:
        listed = list_new_images(path.expanduser(), schema.class_names, data.label_map,
                                 multilabel, stacklevel=3)
        if listed is None:  # a train / val / test tree or another image source: read whole
            progress.start("images", None)
            return iter([run.predictions(path, origin)]), False, []
        progress.start("images", len(listed.paths))
        files = ((listed.paths[s:s + size], listed.ids[s:s + size],
                  None if listed.codes is None else listed.codes[s:s + size])
                 for s in range(0, len(listed.paths), size))
    said: list[str] = []

    def parts() -> Iterator[Predictions]:
        shapes = Aspects(0, 0, np.inf, 0.0, 1.0)
        for paths, ids, codes in files:
            decoded = decode_list(ImageList(names=paths, ids=ids, paths=paths), opts)
            kept = decoded.kept
            if decoded.aspects is not None and decoded.aspects.images:
                a = decoded.aspects
                shapes = Aspects(shapes.images + a.images, shapes.other + a.other,
                                 min(shapes.lo, a.lo), max(shapes.hi, a.hi), a.target)
            yield run.image_predictions(decoded.images, np.asarray(ids, dtype=str)[kept],
                                        None if codes is None else np.asarray(codes)[kept])
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            warn_if_reshaped(shapes, schema.image, origin)
        said.extend(str(w.message) for w in caught)

    return parts(), True, said


def _image_csv(run: Run, path: Path, size: int
               ) -> Iterator[tuple[list[str], list[str], Optional[np.ndarray]]]:
    """A CSV of image paths in parts: (files, ids, label codes or None). Its labels (the
    run's target column, or one named label, class, ...) are matched to the model's
    classes by name, as in training (``data.label_map`` applied)."""
    opts = ImageOptions(image_column=run.config.data.image_column)
    lookup = {class_key(c): i for i, c in enumerate(run.schema.class_names)}
    first = 1
    for part in read_image_csv(path, chunksize=size):
        part.columns = [str(c).strip() for c in part.columns]
        if first == 1:
            column = image_column(part, path, opts)
            target = run.config.data.target
            labels = (target if target in part.columns else
                      next((c for c in part.columns if c.lower() in LABEL_NAMES
                            and c != column), None))
            labels = None if run.task == "multilabel" else labels
        listed = [listed_image(path, first + i, value, column)
                  for i, value in enumerate(part[column].tolist())]
        codes = None
        if labels is not None:
            names = [str(v).strip() for v in part[labels].tolist()]
            mapped = renamed(names, run.config.data.label_map or {})
            codes = np.asarray([lookup.get(class_key(v), -1) for v in mapped])
            bad = np.flatnonzero(codes < 0)
            if len(bad):
                raise DataError(f"'{path}' row {first + bad[0]}: label '{names[bad[0]]}' in "
                                f"column '{labels}' is not a class of the model (its classes:"
                                f" {run.schema.class_names}); fix it or blank the column")
        first += len(part)
        yield [f for f, _ in listed], [i for _, i in listed], codes


class _Progress:
    """A rich bar in a terminal; elsewhere a plain line every few seconds."""

    def __init__(self, stream: IO[str]) -> None:
        self.stream, self.done, self.bar = stream, 0, None
        self.unit, self.total = "rows", None
        self.started = self.last = time.perf_counter()

    def start(self, unit: str, total: Optional[int]) -> None:
        self.unit, self.total = unit, total
        if getattr(self.stream, "isatty", lambda: False)():
            from rich.console import Console
            from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn,
                                       TimeElapsedColumn)
            self.bar = Progress(TextColumn("predict"), MofNCompleteColumn(), BarColumn(),
                                TextColumn(unit), TimeElapsedColumn(),
                                console=Console(file=self.stream))
            self.bar.start()
            self.task = self.bar.add_task("predict", total=total)

    def advance(self, n: int) -> None:
        self.done += n
        now = time.perf_counter()
        if self.bar is not None:
            self.bar.update(self.task, completed=self.done)
        elif now - self.last >= REPORT_EVERY_S:
            self.last = now
            of = f" of {self.total:,}" if self.total else ""
            rate = self.done / max(now - self.started, 1e-9)
            print(f"predicted {self.done:,}{of} {self.unit} ({rate:,.0f}/s)", file=self.stream,
                  flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.stop()
