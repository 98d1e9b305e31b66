"""The cockpit's Lab against a real embedded server, driven through its widgets' messages (no browser)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

import voicelab
from voicelab import Agent, Stubs, tool
from voicelab.demo import caller_turns
from voicelab.errors import ConfigError, SessionError
from voicelab.widgets import Lab, LabError, Pending, default_recording_folder

CONFIG = voicelab.SessionConfig(
    turn_detection={"type": "server_vad", "silence_duration_ms": 500},
    transcription={"model": "gpt-4o-mini-transcribe"},
)


@tool
def lookup_order(order_number: str) -> str:
    """Look up an order.

    Args:
        order_number: The order number.
    """
    raise NotImplementedError


@tool(needs_approval=True)
def create_return_label(delivery: str = "email") -> str:
    """Create a return label."""
    return f"label sent by {delivery}"


def desk_agent() -> Agent:
    return Agent(
        name="returns_desk",
        instructions="returns desk",
        tools=[lookup_order, create_return_label],
        stubs=Stubs().manual("lookup_order"),
        turn_detection={"type": "server_vad", "silence_duration_ms": 500},
        transcription={"model": "gpt-4o-mini-transcribe"},
    )


@pytest.fixture(scope="module")
def turns() -> list[Any]:
    return caller_turns()


async def speak(lab: Lab, audio: Any, *, seq: int = 0, silence_ms: int = 900, pace: float = 0.0) -> int:
    """Send `audio` + silence through the microphone widget's message path, as the browser does."""
    pcm = audio.to_realtime().to_pcm16() + bytes(silence_ms * 48)
    step = lab.mic.batch_ms * 48
    for offset in range(0, len(pcm), step):
        seq += 1
        chunk = pcm[offset : offset + step]
        lab.mic._on_custom(
            lab.mic,
            {"type": "audio", "seq": seq, "samples": len(chunk) // 2, "source": "mic"},
            [memoryview(chunk)],
        )
        await asyncio.sleep(pace)
    return seq


def sent_by(widget: Any) -> list[tuple[dict[str, Any], list[bytes]]]:
    sent: list[tuple[dict[str, Any], list[bytes]]] = []
    widget.send = lambda content, buffers=None: sent.append((content, [bytes(b) for b in buffers or []]))
    return sent


def recorded(lab: Lab) -> list[dict[str, Any]]:
    path = lab.recording_path
    assert path is not None
    return [json.loads(line) for line in (path / "events.jsonl").read_text().splitlines() if line.strip()]


async def test_connect_returns_at_once_and_the_call_runs_in_the_background(
    tmp_path: Path, turns: Any
) -> None:
    lab = Lab.local(CONFIG, pace="fast", record_dir=tmp_path)
    try:
        pending = lab.connect()
        assert isinstance(pending, Pending) and "background" in repr(pending)
        session = await pending
        assert lab.state == "open" and lab.session is session and not session.closed
        assert lab.recording_path is not None and lab.recording_path.parent == tmp_path
        answered = lab.wait_for("response_done", timeout=20)  # from here on: a fast answer is not missed
        seq = await speak(lab, turns[0])
        done = await answered
        assert done.status == "completed"
        assert "would like to return" in lab.transcript.text().lower()
        assert "assistant:" in lab.transcript.text()
        stats = lab.stats()
        assert stats["mic_batches"] == seq and stats["mic_gaps"] == 0
        await lab.disconnect()
        await asyncio.sleep(0.2)
        assert lab.state == "closed"
        rec = voicelab.load_recording(lab.recording_path)
        sent_ms = (len(turns[0].to_realtime().to_pcm16()) + 900 * 48) / 48
        assert abs(rec.input.duration_ms - sent_ms) < 0.05 * sent_ms
        frames = lab.tables()
        assert len(frames["turns"]) == 1 and frames["turns"]["kind"].iloc[0] == "vad"
    finally:
        await lab.close()


async def test_assistant_audio_goes_to_the_player_batched_and_reports_feed_playback(tmp_path: Path) -> None:
    lab = Lab.local(CONFIG, pace="fast", record_dir=tmp_path)
    sent = sent_by(lab.player)
    try:
        session = await lab.connect()
        lab.send_text("I would like to return an order.")
        await lab.wait_for("audio_end", timeout=20)
        await asyncio.sleep(0.3)
        audio = [m for m in sent if m[0]["type"] == "audio"]
        assert audio, "no audio message reached the player"
        item_id = audio[0][0]["item_id"]
        received = sum(len(b[0]) for m, b in audio if m["item_id"] == item_id)
        item = session.conversation.get(item_id)
        assert received / 48 == pytest.approx(item.audio_ms, abs=1)
        assert any(m[0] == {"type": "end", "item_id": item_id} for m in sent)
        lab.player._on_custom(lab.player, {"type": "played", "item_id": item_id, "played_ms": 420.0}, [])
        state = session.playback.state()
        assert state is not None and state.item_id == item_id and state.played_ms == 420.0
    finally:
        await lab.close()


async def test_barge_in_truncates_at_what_the_player_confirms_it_played(tmp_path: Path) -> None:
    lab = Lab.local(CONFIG, pace="realtime", record_dir=tmp_path)
    sent: list[dict[str, Any]] = []
    loop = asyncio.get_running_loop()

    def browser(content: dict[str, Any], buffers: Any = None) -> None:  # a player that stops at 420 ms
        sent.append(content)
        if content.get("type") == "flush" and lab.playback is not None and lab.playback.state():
            item_id = lab.playback.state().item_id
            report = {"type": "played", "item_id": item_id, "played_ms": 420.0, "final": True}
            loop.call_later(0.05, lab.player._on_custom, lab.player, report, [])

    lab.player.send = browser
    try:
        await lab.connect()
        lab.send_text("I would like to return an order.")
        await lab.wait_for("response_started", timeout=20)
        await asyncio.sleep(0.8)
        item_id = next(m["item_id"] for m in sent if m.get("type") == "audio")
        lab.player._on_custom(lab.player, {"type": "played", "item_id": item_id, "played_ms": 350.0}, [])
        await lab.interrupt()
        interrupted = [e for e in lab.events if e.type == "audio_interrupted"]
        assert interrupted and interrupted[-1].played_ms == 420.0  # the final report, not the last tick
        assert {"type": "flush"} in sent
        assert lab.playback is not None and lab.playback.confirmed_stops == 1
        await lab.wait_for("response_done", timeout=10)
        truncates = [r for r in recorded(lab) if r["type"] == "conversation.item.truncate"]
        assert truncates and truncates[-1]["event"]["audio_end_ms"] == 420
        assert "interrupted at 0.42 s" in lab.transcript.text()
    finally:
        await lab.close()


async def test_without_a_final_report_the_stop_extrapolates_from_the_last_one(tmp_path: Path) -> None:
    lab = Lab.local(CONFIG, pace="realtime", record_dir=tmp_path)
    sent = sent_by(lab.player)
    try:
        session = await lab.connect()
        lab.send_text("I would like to return an order.")
        await lab.wait_for("response_started", timeout=20)
        await asyncio.sleep(0.8)
        item_id = next(m["item_id"] for m, _ in sent if m.get("type") == "audio")
        lab.player._on_custom(lab.player, {"type": "played", "item_id": item_id, "played_ms": 350.0}, [])
        played = await lab.interrupt()
        assert lab.playback is not None and lab.playback.estimated_stops == 1
        received = session.conversation.get(item_id).audio_ms
        assert 350.0 + 400 <= played <= received  # it kept playing while the flush travelled
    finally:
        await lab.close()


async def test_a_manual_stub_is_answered_and_an_approval_clicked_in_the_panel(
    tmp_path: Path, turns: Any
) -> None:
    lab = Lab.local(desk_agent(), pace="fast", record_dir=tmp_path)
    try:
        await lab.connect()
        lab.send_text("The order number is four five six seven.")
        call = await lab.stubs.wait_pending("lookup_order", timeout=20)
        assert call.arguments == {"order_number": "four five six seven"}
        lab.stubs_panel.refresh()
        box = lab.stubs_panel.calls.children[0]
        editor = box.children[1]
        assert json.loads(editor.value) == {"order_number": "four five six seven", "result": ""}
        answer = box.children[2].children[1]
        assert answer.description == "Answer"
        editor.value = "Delivered on March 3rd."
        answer.click()
        done = await lab.wait_for("tool_call", lambda e: e.name == "lookup_order", timeout=20)
        assert done.output == "Delivered on March 3rd." and done.stub_kind == "manual"
        assert lab.canned_answers("lookup_order") == ["Delivered on March 3rd."]

        lab.send_text("Yes, please send me the return label.")
        await lab.wait_for("tool_approval_required", timeout=20)
        lab.stubs_panel.refresh()
        box = lab.stubs_panel.calls.children[0]
        buttons = {b.description: b for b in box.children[1].children}
        assert set(buttons) == {"Approve", "Reject", "Always"}
        buttons["Approve"].click()
        label = await lab.wait_for("tool_call", lambda e: e.name == "create_return_label", timeout=20)
        assert label.approval == "approved" and label.output == "label sent by email"
        path = lab.save_stubs(tmp_path / "stubs.json")
        assert json.loads(path.read_text())["stubs"]["lookup_order"]["output"] == "Delivered on March 3rd."
        crumbs = lab.transcript.text()
        assert "tool lookup_order" in crumbs and "approval needed for create_return_label" in crumbs
    finally:
        await lab.close()


async def test_push_to_talk_turns_off_server_vad_and_commits_on_release(tmp_path: Path, turns: Any) -> None:
    lab = Lab.local(CONFIG, pace="fast", record_dir=tmp_path)
    try:
        session = await lab.connect()
        lab.mic.mode = "ptt"
        await asyncio.sleep(0.3)
        assert session.config.turn_detection is None
        answered = lab.wait_for("response_done", timeout=20)
        lab.mic._on_custom(lab.mic, {"type": "ptt", "down": True}, [])
        await speak(lab, turns[0], silence_ms=0)
        lab.mic._on_custom(lab.mic, {"type": "ptt", "down": False}, [])
        done = await answered
        assert done.status == "completed"
        types = [r["type"] for r in recorded(lab) if r["dir"] == "client"]
        assert "input_audio_buffer.clear" in types and "input_audio_buffer.commit" in types
        lab.mic.mode = "open"
        await asyncio.sleep(0.3)
        assert session.config.turn_detection["type"] == "server_vad"
    finally:
        await lab.close()


async def test_a_failed_connect_shows_in_the_cockpit_and_raises_on_the_next_call(tmp_path: Path) -> None:
    lab = Lab(CONFIG, url="ws://127.0.0.1:9/v1/realtime", record_dir=tmp_path, open_timeout=2.0)
    pending = lab.connect()  # not awaited: still reported
    for _ in range(200):
        if pending.done():
            break
        await asyncio.sleep(0.02)
    assert lab.state == "failed" and "Failed" in lab.mic.status
    assert "failed" in repr(pending)
    with pytest.raises(LabError, match="failed"):
        lab.send_text("hello")
    with pytest.raises(LabError, match="not connected"):
        lab.send_text("hello")
    with pytest.raises(LabError, match="could not connect"):
        await lab.connect()


def test_bad_definitions_fail_when_the_lab_is_made(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ConfigError, match="folder path"):
        Lab(CONFIG, url="ws://127.0.0.1:9/v1/realtime", record_dir=True)  # type: ignore[arg-type]
    a_file = tmp_path / "file"
    a_file.write_text("x")
    with pytest.raises(ConfigError, match="is a file"):
        Lab(CONFIG, url="ws://127.0.0.1:9/v1/realtime", record_dir=a_file)
    with pytest.raises(ConfigError, match="manages playback"):
        Lab(CONFIG, url="ws://127.0.0.1:9/v1/realtime", playback=None)
    with pytest.raises(ConfigError, match="SessionConfig"):
        Lab(42, url="ws://127.0.0.1:9/v1/realtime")
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(SessionError, match="OPENAI_API_KEY"):
        Lab(CONFIG)


def test_an_action_without_an_event_loop_says_how_to_run_it(tmp_path: Path) -> None:
    lab = Lab(CONFIG, url="ws://127.0.0.1:9/v1/realtime", record_dir=tmp_path)
    with pytest.raises(LabError, match=r"await lab\.connect"):
        lab.connect()


def test_the_key_never_shows(tmp_path: Path) -> None:
    key = "sk-test-" + "x" * 40
    lab = Lab(CONFIG, url="ws://127.0.0.1:9/v1/realtime", api_key=key, record_dir=tmp_path)
    assert key not in repr(lab) and key not in lab.url
    assert key not in str(lab._repr_mimebundle_())


def test_canned_answers_come_from_answers_given_and_the_stub(tmp_path: Path) -> None:
    stubs = Stubs().manual("lookup_order", default="Not found.").fixed("create_return_label", "Label sent.")
    agent = Agent(name="desk", instructions="x", tools=[lookup_order, create_return_label], stubs=stubs)
    lab = Lab(agent, url="ws://127.0.0.1:9/v1/realtime", record_dir=tmp_path)
    assert lab.canned_answers("lookup_order") == ["Not found."]
    assert lab.canned_answers("create_return_label") == ["Label sent."]
    assert lab.canned_answers("nothing") == []


def test_default_recording_folders_never_collide() -> None:
    names = {default_recording_folder("recs") for _ in range(200)}
    assert len(names) == 200


async def test_reconnecting_records_into_a_new_folder_and_keeps_the_stubs(tmp_path: Path) -> None:
    lab = Lab.local(desk_agent(), pace="fast", record_dir=tmp_path)
    try:
        stubs = lab.stubs
        await lab.connect()
        first = lab.recording_path
        await lab.disconnect()
        await lab.connect()
        assert lab.recording_path != first and lab.stubs is stubs
        assert lab.recordings == [first, lab.recording_path]
    finally:
        await lab.close()


async def test_save_turns_writes_the_callers_mic_turns(tmp_path: Path, turns: Any) -> None:
    lab = Lab.local(CONFIG, pace="fast", record_dir=tmp_path / "recs")
    try:
        await lab.connect()
        answered = lab.wait_for("response_done", timeout=20)
        seq = await speak(lab, turns[0])
        await answered
        answered = lab.wait_for("response_done", timeout=20)
        seq = await speak(lab, turns[1], seq=seq)
        await answered
        await lab.disconnect()
        folder = lab.save_turns(tmp_path / "turns")
        manifest = json.loads((folder / "manifest.json").read_text())
        assert manifest["format"] == "voicelab-turns" and len(manifest["turns"]) == 2
        assert all((folder / t["file"]).is_file() for t in manifest["turns"])
    finally:
        await lab.close()


async def test_play_audio_is_the_file_fallback_for_a_missing_microphone(tmp_path: Path, turns: Any) -> None:
    wav = tmp_path / "caller.wav"
    voicelab.write_audio(wav, turns[0])
    lab = Lab.local(CONFIG, pace="fast", record_dir=tmp_path / "recs")
    try:
        await lab.connect()
        heard = lab.wait_for("transcript_done", lambda e: e.role == "user", timeout=20)
        await lab.play_audio(wav, realtime=False)
        started = await heard
        assert "return" in started.transcript.lower()
        with pytest.raises(ConfigError):
            lab.play_audio(wav, trailing_silence_ms=-1)
    finally:
        await lab.close()


async def test_the_browser_gets_few_messages_per_second(tmp_path: Path, turns: Any) -> None:
    lab = Lab.local(CONFIG, pace="realtime", record_dir=tmp_path)
    try:
        await lab.connect()
        loop = asyncio.get_running_loop()
        start = loop.time()
        answered = lab.wait_for("response_done", timeout=30)
        await speak(lab, turns[0], pace=0.04)
        await answered
        elapsed = loop.time() - start
        rate = lab.messages_to_browser() / elapsed
        assert 0 < rate <= 100, f"{rate:.0f} messages/s to the browser"
    finally:
        await lab.close()


def test_the_cockpit_view_has_named_controls(tmp_path: Path) -> None:
    lab = Lab(CONFIG, url="ws://127.0.0.1:9/v1/realtime", record_dir=tmp_path)
    view = lab.view
    assert lab.mic in view.children and lab.player in view.children and lab.timeline in view.children
    assert lab.send_button.description == "Send"
    assert lab.settings.apply_button.description == "Apply settings"
    js = str(lab.mic._esm)
    for name in ("Connect", "Disconnect", "Interrupt", "Play file as caller", "Hold to talk"):
        assert f'"{name}"' in js or f">{name}<" in js or f"'{name}'" in js
    bundle = lab._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in bundle
    assert bundle["text/plain"].startswith("Lab(state='closed'")


def test_the_settings_tab_drives_the_mics_voice_processing(tmp_path: Path) -> None:
    lab = Lab(CONFIG, url="ws://127.0.0.1:9/v1/realtime", record_dir=tmp_path)
    assert lab.settings.auto_gain.value is True and lab.settings.settle.value == 0
    lab.settings.auto_gain.value = False  # a click on the checkbox
    lab.settings.settle.value = 400
    assert lab.mic.auto_gain is False and lab.mic.settle_ms == 400
    lab.mic.noise_suppression = False  # from code: the checkbox follows
    assert lab.settings.noise_suppression.value is False


async def test_widget_messages_from_another_thread_run_on_the_labs_loop(tmp_path: Path, turns: Any) -> None:
    """JupyterLab may send widget messages to a kernel subshell (another thread with its own loop): clicks
    must still act on the session's loop."""
    import threading

    lab = Lab.local(CONFIG, pace="fast", record_dir=tmp_path)
    try:

        def click(kind: str) -> None:
            async def fire() -> None:
                lab.mic._on_custom(lab.mic, {"type": kind}, [])

            thread = threading.Thread(target=asyncio.run, args=(fire(),))
            thread.start()
            thread.join()

        click("connect")
        for _ in range(200):
            if lab.state == "open":
                break
            await asyncio.sleep(0.02)
        assert lab.state == "open"
        seq = 0
        pcm = turns[0].to_realtime().to_pcm16() + bytes(900 * 48)

        def send_audio() -> None:
            nonlocal seq
            for offset in range(0, len(pcm), 1920):
                seq += 1
                chunk = pcm[offset : offset + 1920]
                lab.mic._on_custom(lab.mic, {"type": "audio", "seq": seq}, [memoryview(chunk)])

        thread = threading.Thread(target=send_audio)
        thread.start()
        thread.join()
        await lab.wait_for("response_done", timeout=20)
        click("disconnect")
        for _ in range(200):
            if lab.state != "open":
                break
            await asyncio.sleep(0.02)
        assert lab.state == "closed" and lab.error is None, lab.error_traceback
    finally:
        await lab.close()


async def test_the_cockpit_runs_the_chained_architecture_too(tmp_path: Path, turns: Any) -> None:
    lab = Lab.local(CONFIG, architecture="chained", record_dir=tmp_path)
    sent = sent_by(lab.player)
    try:
        session = await lab.connect()
        assert session.architecture == "chained"
        answered = lab.wait_for("response_done", timeout=20)  # registered now: a fast answer is not missed
        await lab.play_audio(turns[0], realtime=False)
        done = await answered
        assert done.status == "completed"
        assert "what is your order number" in lab.transcript.text().lower()
        await asyncio.sleep(0.3)  # the ticker sends the player's audio every 50 ms
        assert any(m["type"] == "audio" for m, _ in sent)
        await lab.disconnect()
        turns_table = lab.tables()["turns"]
        assert turns_table["text_model_ms"].notna().all()
    finally:
        await lab.close()


async def test_wait_for_counts_from_the_call_and_times_out_with_a_lab_error(tmp_path: Path) -> None:
    lab = Lab.local(CONFIG, pace="fast", record_dir=tmp_path)
    try:
        await lab.connect()
        early = lab.wait_for("response_done")
        lab.send_text("I would like to return an order.")
        await asyncio.sleep(1.0)  # the answer is over before anyone awaits
        assert (await early).status == "completed"
        with pytest.raises(LabError, match=r"no tool_start event within 0\.2 s"):
            await lab.wait_for("tool_start", timeout=0.2)
        assert lab.state == "open" and lab.error is None  # a timeout is not a failed call
        with pytest.raises(ConfigError):
            lab.wait_for("response_done", predicate="yes")  # type: ignore[arg-type]
    finally:
        await lab.close()


def test_a_misspelt_lab_option_names_the_closest(tmp_path: Path) -> None:
    from voicelab.errors import ArgumentError

    with pytest.raises(ArgumentError, match="did you mean 'open_timeout'"):
        Lab(Agent(name="a"), url="ws://127.0.0.1:1/v1/realtime", open_timout=3, record_dir=tmp_path)
    a_file = tmp_path / "notes.txt"
    a_file.write_text("x")
    with pytest.raises(ConfigError, match="which is a file"):
        Lab(Agent(name="a"), url="ws://127.0.0.1:1/v1/realtime", record_dir=a_file / "recordings")


def test_a_misspelt_update_field_is_named_before_the_connection_matters(tmp_path: Path) -> None:
    lab = Lab(Agent(name="a"), url="ws://127.0.0.1:1/v1/realtime", record_dir=tmp_path)
    with pytest.raises(ConfigError, match="did you mean 'voice'"):
        lab.update(vioce="ash")  # not connected: the typo is still what it says first
