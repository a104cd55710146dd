"""Every suite takes `--data` as the TIMIT-style folder itself, with any speakers in it."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from presence.audio.wavfile import read_wav16
from presence.bench.g2g import data_dir
from presence.testing.corpus import timit_utterances


def copy_speaker(timit: Path, speaker: str, to: Path, name: str, utterances: int) -> None:
    (to / name).mkdir(parents=True)
    for phn in sorted((timit / speaker).glob("*.phn"))[:utterances]:
        for suffix in (".phn", ".wav"):
            shutil.copy(phn.with_suffix(suffix), to / name / phn.with_suffix(suffix).name)


def test_questions_come_from_whatever_speakers_the_folder_holds_interleaved(timit_dir: Path, tmp_path: Path) -> None:
    speakers = sorted(p.name for p in timit_dir.iterdir() if p.is_dir())
    copy_speaker(timit_dir, speakers[0], tmp_path, "dr9-zzzz0", 3)
    copy_speaker(timit_dir, speakers[1], tmp_path, "dr9-yyyy0", 1)
    found = timit_utterances(tmp_path)
    assert [q.split("/")[0] for q in found] == ["dr9-yyyy0", "dr9-zzzz0", "dr9-zzzz0", "dr9-zzzz0"]
    assert data_dir(str(tmp_path)) == tmp_path
    assert all(len(read_wav16(tmp_path / f"{q}.wav")) > 16_000 for q in found)


def test_a_folder_without_timit_utterances_is_refused_with_a_clear_message(tmp_path: Path) -> None:
    with pytest.raises(SystemExit, match="no TIMIT-style"):
        data_dir(str(tmp_path))


def test_the_samples_nist_sphere_files_read_like_riff_ones(timit_dir: Path) -> None:
    sphere = [p for p in timit_dir.glob("*/*.wav") if p.read_bytes()[:7] == b"NIST_1A"]
    assert sphere, "the sample holds SPHERE files (e.g. dr1-fvmh0/si836.wav)"
    samples = read_wav16(sphere[0])
    assert samples.dtype.name == "int16" and len(samples) > 16_000 and abs(samples).max() > 1000
