"""Tiny CASA-free tasks for testing the runner, context and recipes."""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from solarpipe.qa import QAScore
from solarpipe.task import Results, Task, TaskInputs


@dataclass
class CountInputs(TaskInputs):
    label: str = "x"
    fail_if_file: str | None = None  # raise if this file exists (to simulate a crash)


class CountResults(Results):
    def merge_with_context(self, context) -> None:
        context.products.append(self.summary["label"])


class Count(Task):
    """Appends its label to context.products."""

    name = "hsol_count"
    Inputs = CountInputs
    needs_observing_run = False

    def prepare(self):
        inp = self.inputs
        if inp.fail_if_file and Path(inp.fail_if_file).exists():
            raise RuntimeError(f"simulated crash in {inp.label}")
        return inp.label

    def analyse(self, raw):
        res = CountResults(**vars(self.new_results()))
        res.summary = {"label": raw, "pid": os.getpid()}
        return res

    def qa(self, results):
        return [QAScore(1.0, f"counted {results.summary['label']}")]
