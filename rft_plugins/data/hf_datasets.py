"""``hf_datasets``: local files through Hugging Face ``datasets`` (json, jsonl, parquet, csv, arrow)
and folders written by ``Dataset.save_to_disk``. Nothing is fetched from the hub."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .rows import DataError, from_table, validate_row

#: file suffix -> the ``datasets`` builder that reads it
BUILDERS = {".json": "json", ".jsonl": "json", ".parquet": "parquet", ".csv": "csv", ".arrow": "arrow"}


class HFDatasetsSource:
    """Loads a local dataset file or ``save_to_disk`` folder; rows are checked like JSONL rows.

    Options (``trainer.data_source_options``): ``split`` (default ``train``, for a saved
    ``DatasetDict``) and ``format`` (a ``datasets`` builder name, when the suffix says nothing).
    """

    validates_rows = True

    def __init__(self, options: dict[str, Any] | None = None):
        options = dict(options or {})
        self.split: str = options.pop("split", "train")
        self.format: str | None = options.pop("format", None)
        if options:
            raise DataError(f"unknown option(s) {sorted(options)}; known: split, format", field="trainer.data_source_options")

    @staticmethod
    def matches(location: Any) -> bool:
        """Chosen by default for json/parquet/csv/arrow files and ``save_to_disk`` folders."""
        if not isinstance(location, (str, Path)):
            return False
        path = Path(location)
        return path.is_dir() or path.suffix.lower() in BUILDERS

    def _dataset(self, path: Path) -> Any:
        import datasets

        if path.is_dir():
            loaded = datasets.load_from_disk(str(path))
            if isinstance(loaded, datasets.DatasetDict):
                if self.split not in loaded:
                    raise DataError(f"no split {self.split!r}; it has {sorted(loaded)}", str(path), "trainer.data_source_options.split")
                loaded = loaded[self.split]
            return loaded
        builder = self.format or BUILDERS.get(path.suffix.lower())
        if builder is None:
            raise DataError(f"cannot tell the format of {path.name}; set trainer.data_source_options.format", str(path))
        return datasets.load_dataset(builder, data_files=str(path), split="train")

    def load(self, location: str | Path) -> list[dict[str, Any]]:
        path = Path(location)
        if not path.exists():
            raise DataError("file does not exist", str(path))
        import datasets

        bars_were_on = datasets.is_progress_bar_enabled()
        datasets.disable_progress_bars()  # a few local rows: the bars would only add noise
        try:
            dataset = self._dataset(path)
        except DataError:
            raise
        except Exception as error:  # datasets' own errors: parse failures, bad folders
            raise DataError(f"cannot be read by datasets: {type(error).__name__}: {error}", str(path)) from error
        finally:
            if bars_were_on:
                datasets.enable_progress_bars()
        return [validate_row(from_table(row), f"{path} row {index + 1}") for index, row in enumerate(dataset)]
