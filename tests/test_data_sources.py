"""Data sources: OpenAI RFT JSONL, Hugging Face ``datasets`` local files, in-memory rows."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rft_plugins import hookimpl
from rft_plugins.data import DataError, choose_source, load_rows

ROWS = [
    {"messages": [{"role": "user", "content": "2+2?"}], "answer": "4", "meta": {"level": 1}},
    {
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Capital of France?"},
        ],
        "answer": "Paris",
        "meta": {"level": 2},
        "tools": [{"type": "function", "function": {"name": "lookup"}}],
    },
    {
        "messages": [
            {"role": "user", "content": "Weather?"},
            {"role": "assistant", "content": None, "tool_calls": [{"id": "1", "type": "function"}]},
            {"role": "tool", "content": "sunny"},
            {"role": "user", "content": "So?"},
        ],
        "answer": "sunny",
        "meta": {"level": 3},
    },
]


def write_jsonl(path: Path, rows: list, blank_lines: bool = False) -> Path:
    lines = [json.dumps(row) for row in rows]
    path.write_text(("\n\n" if blank_lines else "\n").join(lines) + "\n")
    return path


def test_jsonl_rows_come_back_as_written(tmp_path):
    rows = load_rows(write_jsonl(tmp_path / "train.jsonl", ROWS, blank_lines=True))
    assert rows == ROWS
    assert choose_source(tmp_path / "train.jsonl") == "jsonl"


@pytest.mark.parametrize(
    "line, field, message",
    [
        ('{"messages": [{"role": "user", "content": "x"}', None, "invalid JSON"),
        ('["not", "an", "object"]', None, "a row is a JSON object"),
        ('{"answer": "4"}', "messages", "required field is missing"),
        ('{"messages": []}', "messages", "non-empty list"),
        ('{"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]}',
         "messages[1].role", "the last message must be from the user"),
        ('{"messages": [{"role": "robot", "content": "q"}]}', "messages[0].role", "unknown role 'robot'"),
        ('{"messages": [{"role": "user", "content": 5}]}', "messages[0].content", "must be a string"),
        ('{"messages": [{"role": "user"}]}', "messages[0].content", "required field is missing"),
        ('{"messages": [{"role": "user", "content": "q"}], "tools": {"name": "f"}}', "tools", "list of tool"),
    ],
)
def test_a_malformed_jsonl_line_names_file_line_and_field(tmp_path, line, field, message):
    path = tmp_path / "train.jsonl"
    path.write_text(json.dumps(ROWS[0]) + "\n\n" + line + "\n" + json.dumps(ROWS[1]) + "\n")
    with pytest.raises(DataError) as caught:
        load_rows(path)
    error = caught.value
    assert error.where == f"{path}:3"
    assert error.field == field
    assert message in error.message
    assert str(error).startswith(f"{path}:3: ")


def test_content_parts_are_accepted(tmp_path):
    row = {"messages": [{"role": "user", "content": [{"type": "text", "text": "hi"}]}]}
    assert load_rows(write_jsonl(tmp_path / "parts.jsonl", [row])) == [row]


@pytest.mark.parametrize("suffix", [".json", ".jsonl-as-json", ".parquet", ".csv"])
def test_hf_datasets_reads_local_files(tmp_path, suffix):
    import datasets

    table = datasets.Dataset.from_list(
        [{**row, "tools": row.get("tools", []), "messages": row["messages"]} for row in ROWS]
    )
    if suffix == ".json":
        path = write_jsonl(tmp_path / "rows.json", ROWS)
    elif suffix == ".jsonl-as-json":  # a JSONL file read through datasets on request
        path = write_jsonl(tmp_path / "rows.jsonl", ROWS)
    elif suffix == ".parquet":
        path = tmp_path / "rows.parquet"
        table.to_parquet(str(path))
    else:  # CSV can only hold the chat as JSON text
        path = tmp_path / "rows.csv"
        flat = datasets.Dataset.from_list(
            [{"messages": json.dumps(row["messages"]), "answer": row["answer"]} for row in ROWS]
        )
        flat.to_csv(str(path), index=False)
    source = "hf_datasets" if suffix == ".jsonl-as-json" else None
    rows = load_rows(path, source)
    assert [row["answer"] for row in rows] == ["4", "Paris", "sunny"]
    assert [len(row["messages"]) for row in rows] == [1, 2, 4]
    assert rows[2]["messages"][1] == {"role": "assistant", "tool_calls": [{"id": "1", "type": "function"}]}
    if suffix != ".csv":
        assert rows[1]["tools"] == [{"type": "function", "function": {"name": "lookup"}}]
        assert rows[0]["meta"] == {"level": 1}
        assert rows[0]["messages"][0] == {"role": "user", "content": "2+2?"}  # no tool_calls: None


def test_hf_datasets_reads_save_to_disk_folders(tmp_path):
    import datasets

    rows = [{key: value for key, value in row.items() if key != "tools"} for row in ROWS]
    dataset = datasets.Dataset.from_list(rows)
    dataset.save_to_disk(str(tmp_path / "plain"))
    assert choose_source(tmp_path / "plain") == "hf_datasets"
    assert [row["answer"] for row in load_rows(tmp_path / "plain")] == ["4", "Paris", "sunny"]
    datasets.DatasetDict({"train": dataset, "test": dataset.select([0])}).save_to_disk(str(tmp_path / "dict"))
    assert len(load_rows(tmp_path / "dict")) == 3
    assert len(load_rows(tmp_path / "dict", options={"split": "test"})) == 1
    with pytest.raises(DataError, match="no split 'dev'"):
        load_rows(tmp_path / "dict", options={"split": "dev"})


def test_hf_rows_are_checked_like_jsonl_rows(tmp_path):
    path = tmp_path / "rows.json"
    bad = {"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}], "answer": "x"}
    write_jsonl(path, [ROWS[0], bad])
    with pytest.raises(DataError) as caught:
        load_rows(path)
    assert caught.value.where == f"{path} row 2" and caught.value.field == "messages[1].role"


def test_hf_unreadable_file_and_unknown_option(tmp_path):
    path = tmp_path / "broken.json"
    path.write_text('{"messages": [}\n')
    with pytest.raises(DataError, match="cannot be read by datasets"):
        load_rows(path)
    with pytest.raises(DataError, match="unknown option"):
        load_rows(write_jsonl(tmp_path / "ok.json", ROWS), options={"shuffle": True})


def test_python_rows(tmp_path):
    assert load_rows(iter(ROWS)) == ROWS
    assert choose_source(ROWS) == "python"
    with pytest.raises(DataError) as caught:
        load_rows([ROWS[0], {"messages": "hello"}])
    assert caught.value.where == "row 2" and caught.value.field == "messages"


def test_unknown_source_and_unknown_file_type(tmp_path):
    with pytest.raises(DataError, match="unknown data source 'sql'") as caught:
        load_rows(tmp_path / "x.jsonl", "sql")
    assert caught.value.field == "trainer.data_source"
    with pytest.raises(DataError, match="no data source reads"):
        load_rows(tmp_path / "notes.txt")
    with pytest.raises(DataError, match="file does not exist"):
        load_rows(tmp_path / "missing.jsonl")


class Numbers:
    """A third-party data source: rows made up from a number, some of them malformed."""

    def __init__(self, options: dict):
        self.bad = options.get("bad", False)

    @staticmethod
    def matches(location) -> bool:
        return isinstance(location, int)

    def load(self, location: int):
        for number in range(location):
            role = "assistant" if self.bad and number == 1 else "user"
            yield {"messages": [{"role": role, "content": str(number)}], "answer": str(number * 2)}


class NumbersPlugin:
    @hookimpl
    def rft_register_data_sources(self, register):
        register("numbers", Numbers)


def test_a_plugin_data_source_is_chosen_and_its_rows_are_checked(fresh_plugins):
    manager = fresh_plugins.get_plugin_manager()
    manager.register(NumbersPlugin(), name="numbers-plugin")
    assert choose_source(3) == "numbers"
    assert [row["answer"] for row in load_rows(3)] == ["0", "2", "4"]
    with pytest.raises(DataError) as caught:
        load_rows(3, "numbers", {"bad": True})
    assert caught.value.where == "numbers row 2" and caught.value.field == "messages[0].role"
