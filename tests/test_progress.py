"""Progress: a tqdm bar with ETA on a terminal, plain lines elsewhere (CI, logs, launchers)."""

from __future__ import annotations

import io
import shutil
import subprocess
import sys

import pytest

from autoencoders.progress import Progress
from tests.helpers import REPO


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_not_a_terminal_gets_plain_lines_at_most_every_period_and_at_the_end():
    stream = io.StringIO()
    with Progress(4, "runs", stream=stream, every=3600) as bar:
        bar.write("[0] started a")
        for _ in range(4):
            bar.update(1, running=1, failed=0)
    lines = stream.getvalue().splitlines()
    # One line per event and one at the end (the period is not reached): no carriage returns.
    assert lines[0] == "[0] started a"
    assert len(lines) == 2 and lines[1].startswith("runs: 4/4, running 1, failed 0, ")
    assert "\r" not in stream.getvalue()


def test_every_update_is_a_line_with_a_zero_period_and_lines_can_go_to_a_log():
    logged = []
    with Progress(3, "importance sampling", "images", every=0, log=logged.append) as bar:
        for _ in range(3):
            bar.update(1)
    assert [line.split(",")[0] for line in logged] == [
        f"importance sampling: {i}/3 images" for i in (1, 2, 3)
    ]
    assert "left" in logged[0] and "left" not in logged[-1]


def test_a_terminal_gets_a_bar_with_the_time_left():
    stream = Terminal()
    with Progress(5, "runs", stream=stream) as bar:
        bar.write("[0] started a")
        bar.update(2, failed=1)
    text = stream.getvalue()
    assert "\r" in text and "[0] started a" in text
    assert "2/5" in text and "<" in text and "failed=1" in text  # tqdm: elapsed<left


@pytest.mark.skipif(shutil.which("script") is None, reason="needs util-linux's script (a pty)")
def test_training_on_a_terminal_shows_a_bar_of_epochs_with_the_lines_above_it(tmp_path):
    """Under a pseudo-terminal (`script`), as a user at a terminal sees it; with the per-step
    loop, each epoch's steps under it; log.txt unchanged."""
    train = (
        f"{sys.executable} -m experiments.train --config=configs/vae.py:data=digits,latent=2 "
        f"--config.network.hidden='(16,)' --config.train.num_epochs=3 --workdir={tmp_path} "
        "--config.train.epoch_loop=steps"
    )
    done = subprocess.run(
        ["script", "-qec", train, "/dev/null"], cwd=REPO, capture_output=True, text=True,
        timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-2000:]
    assert "epochs: 100%" in done.stdout and "3/3 [" in done.stdout  # tqdm: the bar, done
    assert "steps: 100%" in done.stdout and "22/22 [" in done.stdout  # 1437 digits / 64
    lines = done.stdout.replace("\r", "\n").splitlines()
    assert sum(line.startswith("epoch ") for line in lines) == 3  # each epoch's line, once
    log = (tmp_path / "log.txt").read_text()
    assert log.count(" INFO epoch ") == 3 and "epochs:" not in log
