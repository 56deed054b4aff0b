"""Run by test_light_install.py with the Python of a virtual environment that holds the light
install only (rft-plugins without extras): grades with every built-in grader type, uses the TRL
adapter's reward functions, and reports which heavy libraries were imported (none may be) or are
even installed. Standard library and rft_plugins only; prints one JSON report.
"""

import importlib.util
import json
import sys
import tempfile
import threading
from pathlib import Path
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

HEAVY = ("lightning", "torch", "transformers", "tensorboard", "matplotlib", "datasets", "peft", "accelerate", "trl")


class JudgeAndEndpoint(BaseHTTPRequestHandler):
    """An OpenAI-compatible judge (``/v1/chat/completions``) and a grading endpoint (``/grade``)."""

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        if self.path.endswith("/chat/completions"):
            labelled = "label_model_result" in json.dumps(body.get("response_format"))
            content = json.dumps({"steps": [], "result": "correct" if labelled else 0.75})
            reply = {"id": "stub", "object": "chat.completion", "model": body["model"],
                     "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
                     "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}}
        else:
            reply = {"score": 0.25}
        data = json.dumps(reply).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


def graders(port):
    """One grader config per built-in type (text_similarity once per metric without extras)."""
    judge = {"base_url": f"http://127.0.0.1:{port}/v1", "timeout": 5, "max_retries": 0}
    messages = [{"role": "user", "content": "Reference: {{ item.answer }}\nAnswer: {{ sample.output_text }}"}]
    exact = {"type": "string_check", "name": "exact", "input": "{{ sample.output_text }}",
             "reference": "{{ item.answer }}", "operation": "eq"}
    configs = {
        "string_check": exact,
        "python": {"type": "python", "name": "py", "source": "def grade(sample, item):\n    return float(sample['output_text'] == item['answer'])\n"},
        "score_model": {"type": "score_model", "name": "judge", "model": "m", "input": messages, "judge": judge},
        "label_model": {"type": "label_model", "name": "labels", "model": "m", "input": messages, "judge": judge,
                        "labels": ["correct", "wrong"], "passing_labels": ["correct"]},
        "endpoint": {"type": "endpoint", "name": "service", "url": f"http://127.0.0.1:{port}/grade", "max_retries": 0},
        "multi": {"type": "multi", "name": "both", "graders": {"a": exact, "b": {**exact, "operation": "ne"}},
                  "calculate_output": "0.5 * a + b"},
    }
    for metric in ("fuzzy_match", "bleu", "gleu", "meteor", "rouge_1", "rouge_l"):
        configs[f"text_similarity:{metric}"] = {"type": "text_similarity", "name": metric, "input": "{{ sample.output_text }}",
                                                "reference": "{{ item.answer }}", "evaluation_metric": metric}
    return configs


def main():
    server = ThreadingHTTPServer(("127.0.0.1", 0), JudgeAndEndpoint)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    from rft_plugins import run_grader
    from rft_plugins.registry import collect

    item = {"answer": "the capital of France is Paris"}
    responses = {name: run_grader(config, item["answer"], item) for name, config in graders(server.server_address[1]).items()}
    from rft_plugins.adapters.trl import reward_funcs

    [reward] = reward_funcs(graders(0)["string_check"])
    trl = reward(prompts=["q", "q"], completions=["Paris", "Lyon"], answer=["Paris", "Paris"])
    failures = {}
    for module in ("rft_plugins.training", "rft_plugins.adapters.lightning"):
        try:
            __import__(module)
        except ModuleNotFoundError as error:
            failures[module] = f"{type(error).__name__}: {error}"
    from rft_plugins import GraderConfigError, validate_grader

    with tempfile.TemporaryDirectory() as model:
        (Path(model) / "config.json").write_text("{}")
        try:
            validate_grader({"type": "score_model", "name": "local", "model": f"hf:{model}",
                             "input": [{"role": "user", "content": "{{ sample.output_text }}"}]})
        except GraderConfigError as error:
            failures["local judge"] = str(error)
    with tempfile.TemporaryDirectory() as run:  # a run folder's report, as `rft report` builds it
        (Path(run) / "metrics.csv").write_text("step,train_reward_mean,valid_reward_mean\n0,,0.25\n1,0.5,\n2,0.75,0.5\n")
        record = {"prompt": "q", "completion": "a", "sub_rewards": {}, "errors": {}}
        (Path(run) / "samples.jsonl").write_text(
            "".join(json.dumps({**record, "step": step, "reward": reward}) + "\n" for step, reward in ((0, 0.25), (2, 0.5))))
        from rft_plugins.report import write_report

        page = write_report(run).read_text()
        report_page = {"charts": page.count("<svg"), "bytes": len(page)}
    print(json.dumps({
        "report": report_page,
        "types": sorted(collect("graders")),
        "rewards": {name: response["reward"] for name, response in responses.items()},
        "flags": {name: [f for f, v in response["metadata"]["errors"].items() if v is True] for name, response in responses.items()},
        "trl": trl,
        "import_errors": failures,
        "imported": [name for name in HEAVY if name in sys.modules],
        "installed": [name for name in HEAVY if importlib.util.find_spec(name) is not None],
    }))


main()
