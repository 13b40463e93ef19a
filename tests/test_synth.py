"""The synthetic dataset: deterministic from its seed, audible, in the layouts the loaders read."""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from fixtures_data import dominant_hz

from earshot.wavio import read_wav
from trainer import synth
from trainer.datasets import load_dataset, load_split

FS = 16000


def _synth(out: Path, *args: str) -> None:
    parser = argparse.ArgumentParser()
    synth.add_parser(parser.add_subparsers())
    ns = parser.parse_args(["synth", str(out), *args])
    assert ns.func(ns) == 0


def _digests(root: Path) -> dict[str, str]:
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("synth") / "a"
    _synth(out, "--seed", "7", "--per-label", "2", "--speakers", "3")
    return out

REAL_FILES = sum(n for n, _ in synth.REAL_BACKGROUND.values())
"""Real-recording background files per set."""


def test_same_seed_same_bytes_other_seed_other_audio(tiny: Path, tmp_path: Path) -> None:
    _synth(tmp_path / "b", "--seed", "7", "--per-label", "2", "--speakers", "3")
    first, second = _digests(tiny), _digests(tmp_path / "b")
    # clips (the alarm set's background/ also holds 2 real-recording negatives), noise files,
    # real-recording excerpts, lists, markers, the speakers file
    assert len(first) == 8 * 2 + 3 * 2 + 2 + 2 * 4 + 2 * REAL_FILES + 2 + 2 + 1
    assert first == second
    _synth(tmp_path / "c", "--seed", "8", "--per-label", "2", "--speakers", "3", "--set", "alarm")
    other = _digests(tmp_path / "c")
    shared = [k for k in other if k.endswith(".wav") and k in first]
    assert shared and all(other[k] != first[k] for k in shared)


def test_keywords_are_speech_commands_with_audible_words(tiny: Path) -> None:
    kw = tiny / "keywords"
    for word in synth.KEYWORDS:
        files = sorted((kw / word).glob("*_nohash_*.wav"))
        assert len(files) == 2
        for f in files:
            x = read_wav(f)
            assert x.size == FS
            frames = x.reshape(50, 320)
            loud = np.sqrt((frames.astype(np.float64) ** 2).mean(1))
            assert 20 * np.log10(loud.max()) > -35  # a spoken word, not silence
            assert (loud > 10 * np.percentile(loud, 10)).sum() >= 3  # ...standing out of its floor
    # four generated noises and excerpts of real recordings (music, speech, effects) in
    # synth.REAL_BACKGROUND's numbers, so that augmentation mostly mixes in real recordings
    names = sorted(p.stem for p in (kw / "_background_noise_").glob("*.wav"))
    assert len(names) == 4 + REAL_FILES and sum(n.startswith("real_music_") for n in names) == 8
    ds = load_dataset(kw, progress=False)
    assert ds.layout == "speech_commands" and ds.labels == sorted(synth.KEYWORDS)
    speakers = {s: {c.group for c in ds.clips if c.split == s} for s in ("train", "val", "test")}
    assert all(speakers.values())  # the lists give every split a speaker...
    assert not (speakers["train"] & speakers["val"]) and not (speakers["val"] & speakers["test"])
    assert not (speakers["train"] & speakers["test"])  # ...and never the same one twice
    # test and validation voices are whole accents and variants training never hears
    who = json.loads((kw / synth.SPEAKERS_FILE).read_text())
    accents = {s: {who[g]["accent"] for g in speakers[s]} for s in speakers}
    variants = {s: {who[g]["variant"] for g in speakers[s]} for s in speakers}
    espeak_variants = {s: v - {synth.MBROLA_VARIANT} for s, v in variants.items()}
    for held in ("val", "test"):
        assert accents[held] <= set(synth.HELD_OUT_VOICES[held]) | set(synth.MBROLA_HELD_OUT[held])
        assert not accents[held] & accents["train"]
        assert not espeak_variants[held] & espeak_variants["train"]
    assert all(who[g]["split"] == s for s in speakers for g in speakers[s])
    # MBROLA voices are opt-in (EARSHOT_MBROLA=yes): by default every speaker is espeak-ng's
    assert all(who[g]["variant"] != synth.MBROLA_VARIANT for g in who)


def test_install_script_installs_every_mbrola_database_synth_reads() -> None:
    # The package list lives in scripts/install-system-deps (bash, run before any Python):
    # a voice added to synth.MBROLA_VOICES but not there would never be installed.
    import re

    script = (Path(__file__).resolve().parents[1] / "scripts" / "install-system-deps").read_text()
    loop = re.search(r"for v in ([a-z0-9 ]+); do\s+VOICES\+=\(\"mbrola-\$v\"\)", script)
    assert loop, "the MBROLA voice loop in scripts/install-system-deps changed shape"
    assert set(loop.group(1).split()) == {synth._mbrola_database(v) for v in synth.MBROLA_VOICES}


def test_mbrola_speakers_speak_and_only_installed_databases_are_used(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    rng = np.random.default_rng(3)
    voice = synth.Voice("mb-us3", synth.MBROLA_VARIANT, 50)
    if (synth.MBROLA_DIR / "us3").is_dir():
        audio = synth.trim(synth.espeak("stop", voice))
        assert 0.2 < audio.size / FS < 1.0 and np.abs(audio).max() > 0.1  # one spoken word
    else:  # not installed: the error names the voice
        with pytest.raises(RuntimeError, match="mb-us3"):
            synth.espeak("stop", voice)
    # opt-in, and only the databases present on disk are drawn
    for name in synth.MBROLA_HELD_OUT["test"] + ("mb-us1",):
        (tmp_path / synth._mbrola_database(name)).mkdir()
    monkeypatch.setattr(synth, "MBROLA_DIR", tmp_path)
    monkeypatch.setattr(synth, "PICO_VOICES", ())  # (Pico voices: the next test)
    assert synth.mbrola_voices() == ()  # EARSHOT_MBROLA unset
    monkeypatch.setenv("EARSHOT_MBROLA", "yes")
    test = synth.pick_voices(6, rng, "test")
    natural = [v for v in test if v.variant == synth.MBROLA_VARIANT]
    assert len(natural) == 3 and {v.base for v in natural} <= set(synth.MBROLA_HELD_OUT["test"])
    assert synth.mbrola_voices() == ("mb-us1", "mb-us3", "mb-de5-en", "mb-pl1-en")
    assert {v.base for v in synth.pick_voices(6, rng, "train")} & {"mb-us1"}
    assert all(v.variant != synth.MBROLA_VARIANT for v in synth.pick_voices(6, rng, "val"))
    for name in synth.MBROLA_HELD_OUT["test"] + ("mb-us1",):
        (tmp_path / synth._mbrola_database(name)).rmdir()
    assert all(v.variant != synth.MBROLA_VARIANT for v in synth.pick_voices(6, rng, "train"))


def test_pico_speakers_speak_and_are_held_out_by_voice(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(5)
    voice = synth.Voice("pico-en-GB", synth.PICO_VARIANT, 50)
    if shutil.which("pico2wave"):
        slow = synth.trim(synth.espeak("stop", voice, 110))
        fast = synth.trim(synth.espeak("stop", voice, 220))
        assert 0.2 < slow.size / FS < 1.2 and np.abs(slow).max() > 0.1  # one spoken word
        assert fast.size < 0.8 * slow.size  # the speed reaches Pico
        low = synth.trim(synth.espeak("stop", replace(voice, warp=0.9), 160, 30))
        assert np.abs(low).max() < 0.5 * np.abs(synth.trim(synth.espeak("stop", voice))).max()
    else:  # not installed: the error names the voice and the package
        with pytest.raises(FileNotFoundError, match="pico-en-GB.*libttspico-utils"):
            synth.espeak("stop", voice)
    monkeypatch.setattr(synth.shutil, "which", lambda name: f"/usr/bin/{name}")
    assert synth.pico_voices() == ()  # opt-in with the MBROLA voices
    monkeypatch.setenv("EARSHOT_MBROLA", "yes")
    assert synth.pico_voices("train") == ("pico-en-US",)
    assert synth.pico_voices("test") == ("pico-en-GB",) and synth.pico_voices("val") == ()
    train = synth.pick_voices(80, rng, "train")
    test = synth.pick_voices(26, rng, "test")
    assert {v.base for v in train if v.variant == synth.PICO_VARIANT} == {"pico-en-US"}
    assert {v.base for v in test if v.variant == synth.PICO_VARIANT} <= {"pico-en-GB"}
    assert not {v.speaker for v in train} & {v.speaker for v in test}
    monkeypatch.setattr(synth.shutil, "which", lambda name: None)
    assert all(v.variant != synth.PICO_VARIANT for v in synth.pick_voices(20, rng, "test"))


def test_alarm_set_tones_in_the_piezo_band_and_negatives(tiny: Path) -> None:
    ds = load_dataset(tiny / "alarm", progress=False)
    assert ds.layout == "folders" and ds.labels == ["background", "co_alarm", "smoke_alarm"]
    assert len(ds.background) == 4 + REAL_FILES
    x = np.concatenate([load_split(ds, s, progress=False)[0] for s in ("train", "val", "test")])
    assert x.shape == (8, FS)  # 2 clips of each label, and 2 real-recording negatives
    real = [p for p in (tiny / "alarm" / "background").glob("*.wav")
            if not p.name.startswith("negative")]  # fmt: skip
    assert len(real) == 2 and all(np.abs(read_wav(p)).max() > 1e-3 for p in real)
    for f in sorted((tiny / "alarm" / "smoke_alarm").glob("*.wav")):
        assert _alarm_kind(read_wav(f)) in ("piezo", "low-frequency")
    for f in sorted((tiny / "alarm" / "co_alarm").glob("*.wav")):
        a = read_wav(f)
        assert _alarm_kind(a) == "piezo"
        loud = np.sqrt((a.reshape(100, 160).astype(np.float64) ** 2).mean(1))  # 10 ms frames
        on = loud > 0.3 * loud.max()
        runs = np.diff(np.flatnonzero(np.diff(np.concatenate([[0], on, [0]]))))[::2]
        assert runs.max() <= 13  # T4 beeps are 0.1 s (+-10 %), never a T3 half-second


def _alarm_kind(a: np.ndarray) -> str:
    """"piezo" (loudest line above 1 kHz at 2.9-3.5 kHz) or "low-frequency" (loudest line at
    480-562 Hz with its 3rd harmonic the next odd line), else "neither"."""
    spec = np.abs(np.fft.rfft(a))
    hz = np.fft.rfftfreq(a.size, 1 / FS)
    f0 = hz[np.argmax(spec * (hz > 200))]
    if 470 <= f0 <= 570:
        at = {k: spec[np.abs(hz - k * f0) < 5 * k].max() for k in (1, 3)}  # a wobble spreads lines
        if at[3] > 0.15 * at[1]:  # a square wave's 3rd harmonic is a third of its fundamental
            return "low-frequency"
    return "piezo" if 2900 <= hz[np.argmax(spec * (hz > 1000))] <= 3500 else "neither"


def test_smoke_alarm_windows_hold_piezo_and_low_frequency_alarms(tmp_path: Path) -> None:
    kinds = [_alarm_kind(synth._alarm_clip(np.random.default_rng((5, i)))) for i in range(60)]
    assert "neither" not in kinds
    assert 0.15 <= kinds.count("low-frequency") / len(kinds) <= 0.35  # 30 % of T3, none of T4


def test_alarm_patterns_follow_t3_and_t4_timing() -> None:
    rng = np.random.default_rng(0)
    audio, on = synth.render_tones(synth.alarm_schedule("t3", 1), 3100.0, rng)
    edges = np.flatnonzero(np.diff(on.astype(int)))
    bursts = (edges[1::2] - edges[0::2]) / FS
    assert bursts == pytest.approx([0.5, 0.5, 0.5], abs=0.01)
    assert on.size / FS == pytest.approx(4.0, abs=0.01)  # 3 x (0.5 on + 0.5 off) + 1 s more off
    assert abs(dominant_hz(audio[: FS // 2]) - 3100.0) < 20
    _, on4 = synth.render_tones(synth.alarm_schedule("t4", 1), 3100.0, rng)
    edges4 = np.flatnonzero(np.diff(on4.astype(int)))
    assert ((edges4[1::2] - edges4[0::2]) / FS) == pytest.approx([0.1] * 4, abs=0.01)
    assert on4.size / FS == pytest.approx(5.7, abs=0.01)


def test_make_stream_places_events_at_their_onsets() -> None:
    events = [(1.0, "yes"), (4.0, "smoke_alarm"), (8.0, "stop")]
    audio, truth = synth.make_stream(3, 10.0, events, background="silence")
    assert audio.shape == (10 * FS,) and audio.dtype == np.float32
    assert [t["label"] for t in truth] == ["yes", "smoke_alarm", "stop"]
    assert truth[1]["end_s"] - truth[1]["onset_s"] == pytest.approx(2.5, abs=0.01)
    sound = np.zeros(audio.size, bool)
    for t in truth:
        a, b = int(t["onset_s"] * FS), int(t["end_s"] * FS)
        sound[a:b] = True
        assert np.abs(audio[a : a + 800]).max() > 0.01  # starts at the onset
    assert not np.any(audio[~sound])  # digital silence everywhere else
    again, _ = synth.make_stream(3, 10.0, events, background="silence")
    assert np.array_equal(audio, again)


def test_make_stream_background_at_the_asked_snr() -> None:
    quiet, _ = synth.make_stream(1, 6.0, [], background="noise", snr_db=20.0, level_dbfs=-20.0)
    level = 10 * np.log10(np.mean(quiet.astype(np.float64) ** 2))
    assert level == pytest.approx(-40.0, abs=0.1)


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"events": [(1.0, "Yes!")]}, "'Yes!' is neither"),
        ({"events": [(12.0, "yes")]}, "outside"),
        ({"background": "rain"}, "'rain'"),
    ],
)
def test_make_stream_rejects_bad_requests(kwargs, match) -> None:
    args = {"seed": 0, "duration_s": 10.0, "events": [], **kwargs}
    with pytest.raises(ValueError, match=match):
        synth.make_stream(**args)


def test_synth_refuses_to_overwrite_a_folder_it_did_not_write(tmp_path: Path) -> None:
    (tmp_path / "keywords").mkdir()
    (tmp_path / "keywords" / "mine.txt").write_text("precious")
    with pytest.raises(ValueError, match="was not written by synth"):
        _synth(tmp_path, "--per-label", "1", "--set", "keywords")
    assert (tmp_path / "keywords" / "mine.txt").read_text() == "precious"


def test_fillers_make_an_unknown_class_and_keep_the_keywords(tiny: Path, tmp_path: Path) -> None:
    _synth(tmp_path / "f", "--seed", "7", "--per-label", "2", "--speakers", "3", "--set", "keywords",
           "--fillers", "2")
    kw, plain = tmp_path / "f" / "keywords", _digests(tiny / "keywords")
    with_fillers = _digests(kw)
    fillers = synth.fillers_for(synth.KEYWORDS)
    for word in fillers:
        assert len(list((kw / word).glob("*_nohash_*.wav"))) == 2
    # the keyword clips are the same bytes with or without fillers
    assert {k: v for k, v in with_fillers.items() if k.split("/")[0] in synth.KEYWORDS} == {
        k: v for k, v in plain.items() if k.split("/")[0] in synth.KEYWORDS}
    listed = (kw / "validation_list.txt").read_text() + (kw / "testing_list.txt").read_text()
    assert any(line.split("/")[0] in fillers for line in listed.split())
    ds = load_dataset(kw, labels=list(synth.KEYWORDS), unknown=True, progress=False)
    assert ds.labels == ["_unknown_", *synth.KEYWORDS]
    assert {c.source_label for c in ds.clips if c.label == "_unknown_"} <= {
        *fillers, synth.HOUSEHOLD_FOLDER, synth.OTHER_SPEECH_FOLDER, synth.OTHER_SOUNDS_FOLDER}
    # non-speech household sounds (beeps, alarm windows, clicks) go to _unknown_ as well
    household = sorted((kw / synth.HOUSEHOLD_FOLDER).glob("*_nohash_*.wav"))
    assert all(np.max(np.abs(read_wav(f))) > 0.001 for f in household)
    assert len(household) == synth.household_count(2, fillers) == round(0.3 * 2 * len(fillers))
    # real speech in other languages, and music and effects, a fifth more from held-out files
    n = synth.real_unknown_count(2, fillers)
    for folder in (synth.OTHER_SPEECH_FOLDER, synth.OTHER_SOUNDS_FOLDER):
        other = sorted((kw / folder).glob("*_nohash_*.wav"))
        assert len(other) == n + n // 5 and all(np.abs(read_wav(f)).max() > 1e-3 for f in other)
        listed = [f for f in other if f"{folder}/{f.name}" in (kw / "testing_list.txt").read_text()]
        assert len(listed) == n // 5 and all(f.name.startswith("test") for f in listed)
    # no training clip of real speech is a Hedgewars voice actor (the real-voice evaluation)
    from trainer import recordings

    packs = {p.name for p in Path(recordings.VOICE_PACKS).iterdir()}
    assert not {f.name.split("_nohash_")[0] for f in (kw / synth.OTHER_SPEECH_FOLDER).glob(
        "train*.wav")} & {f"train{p}" for p in packs}
    # train --unknown-share: _unknown_ drawn as a multiple of a keyword's clip count per split
    for share in (1.0, 3.0):
        ds = load_dataset(kw, labels=list(synth.KEYWORDS), unknown=True, unknown_share=share,
                          progress=False)  # fmt: skip
        for split, counts in ds.report.counts.items():
            present = [counts[k] for k in synth.KEYWORDS if counts.get(k)]  # the known classes
            keyword = sum(present) / len(present)
            assert counts.get("_unknown_", 0) == np.ceil(share * np.ceil(keyword)), (share, split)
    # the held-out negative words of the streamed tests are in no folder of the keyword set
    assert not {p.name for p in kw.iterdir()} & set(synth.NEGATIVE_WORDS)


def test_filler_vocabulary_is_varied_and_holds_no_keyword_negative_or_homophone() -> None:
    """The _unknown_ words: many, each once, none a keyword, a held-out negative word or a word
    that sounds like a keyword; every keyword has neighbours that share its start."""
    words = synth.FILLER_WORDS
    assert len(words) == len(set(words)) >= 100
    assert not set(words) & (set(synth.KEYWORDS) | set(synth.NEGATIVE_WORDS))
    assert not set(words) & {"know", "write", "rite", "wright"}  # = "no", "right"
    neighbours = {"yes": "ye", "no": "no", "up": "u", "down": "do", "left": "le", "right": "ri",
                  "go": "go", "stop": "st"}  # fmt: skip
    for keyword, start in neighbours.items():
        assert sum(w.startswith(start) for w in words) >= 2, keyword


def test_words_makes_any_vocabulary_and_no_filler_sounds_like_it(tmp_path: Path) -> None:
    out = tmp_path / "w"
    _synth(out, "--seed", "3", "--per-label", "3", "--speakers", "3", "--set", "keywords",
           "--fillers", "1", "--words", 'light,"turn on",yes')  # fmt: skip
    kw = out / "keywords"
    for label in ("light", "turn_on", "yes"):
        files = sorted((kw / label).glob("*_nohash_*.wav"))
        assert len(files) == 3 and all(np.abs(read_wav(f)).max() > 0.01 for f in files)
    assert not (kw / "no").exists()  # the default commands are not spoken
    folders = {p.name for p in kw.iterdir() if p.is_dir()}
    assert "light" in folders and not folders & {"lights", "lite"}
    fillers = set(synth.fillers_for(["light", "turn on", "yes"]))
    assert folders - {"light", "turn_on", "yes", "_background_noise_", synth.HOUSEHOLD_FOLDER,
                      synth.OTHER_SPEECH_FOLDER, synth.OTHER_SOUNDS_FOLDER} == fillers  # fmt: skip
    assert "light" in synth.FILLER_WORDS and "light" not in fillers  # a filler equal to a word
    assert json.loads((kw / synth.MARKER).read_text())["words"] == ["light", "turn on", "yes"]


def test_collisions_are_homophones_and_words_that_end_in_a_keyword() -> None:
    assert synth.collides("no", "know") and synth.collides("right", "write")
    assert synth.collides("go", "ago") and synth.collides("up", "cup")
    assert not synth.collides("go", "goal") and not synth.collides("stop", "top")
    assert set(synth.FILLER_WORDS) - set(synth.fillers_for(synth.KEYWORDS)) <= {
        "piano", "bright", "snow", "pup", "cup"}  # fmt: skip
    with pytest.raises(ValueError, match="is given twice"):
        synth.parse_words("yes,Yes")
    with pytest.raises(ValueError, match="is not a word"):
        synth.parse_words("yes,up3")


def test_no_real_recording_that_says_a_vocabulary_word_is_used() -> None:
    """The installed packages name spoken clips by what they say: hedgewars' "Enemy down" and
    "Take cover", ktuberling's object names. A recording saying a keyword must not be an
    ``_unknown_`` clip, a training background or a held-out negative."""
    from trainer import recordings

    assert recordings.may_say(Path("v/Default/Enemydown.ogg"), ["down"])
    assert recordings.may_say(Path("v/Default/Takecover.ogg"), ["hello", "take cover"])
    assert recordings.may_say(Path("v/Pirate/Uh-oh.ogg"), ["uh oh"])
    assert not recordings.may_say(Path("v/Pirate/Stupid.ogg"), ["up", "stop"])
    assert not recordings.may_say(Path("s/en/hat.ogg"), ["hello"])
    everything = {r.path for r in recordings.find()}
    hello = {r.path for r in recordings.find(words=["hello", "take cover"])}
    said = {p for p in everything - hello if p.stem in ("Hello", "Takecover")}
    assert len(said) >= 10 and everything - hello - said == {
        p for p in everything if recordings.may_say(p, ["hello", "take cover"])} - said
    # the default commands: "Enemy down" is left out even with no vocabulary given
    assert not any(p.stem == "Enemydown" for p in everything)


def test_the_real_voices_evaluated_on_are_never_trained_on() -> None:
    """bench/real_voices.py scores bundles on Hedgewars' voice actors: none of their phrases may
    be an ``_unknown_`` clip or a background of a synthetic set (it taught the model that those
    voices say "not a word"), while the other speech still splits 70/30."""
    from trainer import recordings

    speech = recordings.find(["speech"])
    voices = [r for r in speech if str(r.path).startswith(recordings.VOICE_PACKS + "/")]
    others = [r for r in speech if r not in voices]
    assert len(voices) >= 100 and {r.split for r in voices} == {"test"}
    assert {r.split for r in others} == {"train", "test"}
    train = recordings.require(["speech"], "train")
    assert train and not set(train) & set(voices)


def test_held_out_negative_words_never_say_the_vocabulary(tmp_path: Path) -> None:
    from trainer import heldout

    out = tmp_path / "s"
    _synth(out, "--seed", "3", "--per-label", "2", "--speakers", "3", "--set", "keywords",
           "--words", "thank you,hello")  # fmt: skip
    said = {p.name.rsplit("_", 1)[0] for p in
            heldout.negative_words(out / "keywords", tmp_path / "n", "test", 0, ["thank_you", "hello"])}  # fmt: skip
    assert "thank_you" in {synth.label_of(w) for w in synth.NEGATIVE_WORDS}
    assert said and "thank_you" not in said
    allwords = {p.name.rsplit("_", 1)[0] for p in
                heldout.negative_words(out / "keywords", tmp_path / "m", "test", 0)}  # fmt: skip
    assert allwords - said == {"thank_you", "hello"} & {synth.label_of(w) for w in synth.NEGATIVE_WORDS}
