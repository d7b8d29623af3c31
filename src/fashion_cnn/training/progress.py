"""Keras' per-epoch progress line: a live rich bar on a terminal, one plain line per epoch elsewhere.

Epoch 1/20
1500/1500 ━━━━━━━━━━━━━━━━━━━━ 18s 12ms/step - accuracy: 0.7712 - loss: 0.6325 - val_accuracy: 0.8707 - val_loss: 0.3530
"""

from __future__ import annotations

import sys
import time

REFRESH_S = 0.1


def format_logs(logs: dict[str, float]) -> str:
    return " - ".join(f"{k}: {v:.4f}" for k, v in sorted(logs.items()) if isinstance(v, float))


def _bar(done: int, total: int, width: int = 20) -> str:
    filled = width * done // max(total, 1)
    return "━" * filled + " " * (width - filled)


class ProgressLine:
    """Prints the progress of one training run.

    Args:
        epochs: the number of epochs asked for.
        stream: where to print (default stdout); a TTY gets a live bar, anything else plain lines.
        enabled: False prints nothing.
    """

    def __init__(self, epochs: int, stream=None, enabled: bool = True):
        self.epochs, self.stream, self.enabled = epochs, stream or sys.stdout, enabled
        self.live = enabled and hasattr(self.stream, "isatty") and self.stream.isatty()
        self._bar = None

    def start_epoch(self, epoch: int, steps: int) -> None:
        self.steps, self.t0, self.last = steps, time.perf_counter(), 0.0
        if not self.enabled:
            return
        print(f"Epoch {epoch + 1}/{self.epochs}", file=self.stream, flush=True)
        if self.live:
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

            self._bar = Progress(
                MofNCompleteColumn(),
                BarColumn(bar_width=20),
                TimeRemainingColumn(),
                TextColumn("{task.fields[logs]}"),
                console=Console(file=self.stream),
                transient=True,
            )
            self._task = self._bar.add_task("epoch", total=steps, logs="")
            self._bar.start()

    def wants_update(self) -> bool:
        """True when the live bar is due for a redraw (so the loop syncs its metrics only then)."""
        return self._bar is not None and time.perf_counter() - self.last >= REFRESH_S

    def update(self, step: int, logs: dict[str, float]) -> None:
        self.last = time.perf_counter()
        self._bar.update(self._task, completed=step, logs=format_logs(logs))

    def end_epoch(self, logs: dict[str, float]) -> float:
        seconds = time.perf_counter() - self.t0
        if self._bar is not None:
            self._bar.stop()
            self._bar = None
        if self.enabled:
            per_step = seconds / max(self.steps, 1) * 1000
            line = f"{self.steps}/{self.steps} {_bar(self.steps, self.steps)} {seconds:.0f}s {per_step:.0f}ms/step - {format_logs(logs)}"
            print(line, file=self.stream, flush=True)
        return seconds

    def message(self, text: str) -> None:
        if self.enabled:
            print(text, file=self.stream, flush=True)
