"""The Procfile's ``witnesses`` process (``run_demo_witnesses``): it starts each seeded demo
witness once, and starts nothing (rather than exiting, which would stop honcho) before the seed."""

from __future__ import annotations

import threading
from pathlib import Path

from django.test import override_settings

from demo import witnesses
from demo.organisations import BANK, CHARITY

ROOT = Path(__file__).resolve().parents[2]


def test_the_procfile_runs_the_demo_witnesses():
    entries = dict(line.split(": ", 1) for line in (ROOT / "Procfile").read_text().splitlines() if line.strip())
    assert entries["witnesses"] == "python manage.py run_demo_witnesses"


def test_seeded_witnesses_start_once_and_unseeded_ones_wait(tmp_path, monkeypatch):
    started: list[str] = []
    monkeypatch.setattr(witnesses, "run", lambda witness, **kwargs: started.append(witness.name))
    stopped = threading.Event()
    running: set[str] = set()
    with override_settings(DATA_DIR=str(tmp_path)):
        assert witnesses.start_seeded_witnesses("http://127.0.0.1:9/api/", running, interval=1,
                                                stopped=stopped) == []
        for msp_id in (BANK, CHARITY):
            directory = witnesses.witness_dir(msp_id)
            directory.mkdir(parents=True)
            witnesses.load_or_create_key(directory / "witness.key")
            (directory / witnesses.TOKEN_FILE).write_text("gct_test\n")
        assert witnesses.start_seeded_witnesses("http://127.0.0.1:9/api/", running, interval=1,
                                                stopped=stopped) == [BANK, CHARITY]
        assert witnesses.start_seeded_witnesses("http://127.0.0.1:9/api/", running, interval=1,
                                                stopped=stopped) == []
    stopped.set()
    for thread in threading.enumerate():
        if thread.name.startswith("gridcoin-witness-"):
            thread.join(timeout=5)
    assert sorted(started) == sorted([f"{BANK}/witness", f"{CHARITY}/witness"])
