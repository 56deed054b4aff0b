"""Built-in data sources: OpenAI RFT JSONL, Hugging Face ``datasets`` local files, Python lists."""

from __future__ import annotations

from ..contract import DataSourceFactory, Register
from ..data.hf_datasets import HFDatasetsSource
from ..data.jsonl import JsonlSource
from ..data.python_rows import PythonRowsSource
from ..project import hookimpl


@hookimpl
def rft_register_data_sources(register: Register[DataSourceFactory]) -> None:
    register("jsonl", JsonlSource)
    register("hf_datasets", HFDatasetsSource)
    register("python", PythonRowsSource)
