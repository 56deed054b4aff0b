"""``hf_datasets``: local files through Hugging Face ``datasets`` (json, jsonl, parquet, csv, arrow),
folders written by ``Dataset.save_to_disk``, and hub datasets by id (``org/name``, or
``org/name:split``), read from the local Hugging Face cache when they are there (always, with
``HF_HUB_OFFLINE``) and fetched by ``datasets`` otherwise."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .rows import DataError, from_table, validate_row

#: file suffix -> the ``datasets`` builder that reads it
BUILDERS = {".json": "json", ".jsonl": "json", ".parquet": "parquet", ".csv": "csv", ".arrow": "arrow"}
OPTIONS = ("split", "format", "name", "revision")


def hub_dataset(location: Any) -> tuple[str, str | None] | None:
    """``(repo id, split or None)`` when ``location`` names a hub dataset (``org/name[:split]``)
    rather than a local file: no such path, no data file suffix, a valid hub id."""
    if not isinstance(location, str) or Path(location).exists():
        return None
    from ..hub import is_repo_id

    repo, colon, split = location.partition(":")
    if Path(repo).suffix.lower() in BUILDERS or (colon and not split) or not is_repo_id(repo):
        return None
    return repo, split or None


class HFDatasetsSource:
    """Loads a local dataset file or ``save_to_disk`` folder; rows are checked like JSONL rows.

    Options (``trainer.data_source_options``): ``split`` (default ``train``, for a saved
    ``DatasetDict`` or a hub dataset without ``:split``), ``format`` (a ``datasets`` builder name,
    when the suffix says nothing), ``name`` (a hub dataset's configuration) and ``revision``.
    """

    validates_rows = True

    def __init__(self, options: dict[str, Any] | None = None):
        options = dict(options or {})
        self.split: str = options.pop("split", "train")
        self.format: str | None = options.pop("format", None)
        self.name: str | None = options.pop("name", None)
        self.revision: str | None = options.pop("revision", None)
        if options:
            message = f"unknown option(s) {sorted(options)}; known: {', '.join(OPTIONS)}"
            raise DataError(message, field="trainer.data_source_options")

    @staticmethod
    def matches(location: Any) -> bool:
        """Chosen by default for json/parquet/csv/arrow files, ``save_to_disk`` folders and hub ids."""
        if not isinstance(location, (str, Path)):
            return False
        path = Path(location)
        return path.is_dir() or path.suffix.lower() in BUILDERS or hub_dataset(location) is not None

    def _hub_dataset(self, repo: str, split: str | None) -> Any:
        """The split of a hub dataset: its cached snapshot read as a local folder, or (online,
        not cached) fetched by ``datasets``."""
        import datasets

        from ..hub import HubError, dataset_snapshot

        try:
            folder = dataset_snapshot(repo, self.revision)
        except HubError as error:
            raise DataError(error.args[0], repo) from error
        source = str(folder) if folder is not None else repo
        return datasets.load_dataset(source, name=self.name, split=split or self.split,
                                     revision=None if folder is not None else self.revision)

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
        hub = hub_dataset(location)
        if not path.exists() and hub is None:
            raise DataError("file does not exist", str(path))
        import datasets

        bars_were_on = datasets.is_progress_bar_enabled()
        datasets.disable_progress_bars()  # a few local rows: the bars would only add noise
        try:
            dataset = self._hub_dataset(*hub) if hub is not None else self._dataset(path)
        except DataError:
            raise
        except Exception as error:  # datasets' own errors: parse failures, bad folders
            raise DataError(f"cannot be read by datasets: {type(error).__name__}: {error}", str(path)) from error
        finally:
            if bars_were_on:
                datasets.enable_progress_bars()
        return [validate_row(from_table(row), f"{location} row {index + 1}") for index, row in enumerate(dataset)]
