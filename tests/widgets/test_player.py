from __future__ import annotations

from voicelab.widgets import Player


def test_push_batches_per_item_until_flush(capture) -> None:
    player = Player()
    sent = capture(player)
    player.push("item_a", b"\x01\x00" * 480)
    player.push("item_a", b"\x02\x00" * 480)
    player.push("item_b", b"\x03\x00" * 240)
    assert sent.messages == []  # nothing leaves before the flush
    assert player.flush() == 2
    audio = sent.of("audio")
    assert [(m["item_id"], len(b[0])) for m, b in audio] == [("item_a", 1920), ("item_b", 480)]
    assert audio[0][1][0][:2] == b"\x01\x00" and audio[0][1][0][-2:] == b"\x02\x00"
    assert player.flush() == 0


def test_end_and_interrupt(capture) -> None:
    player = Player()
    sent = capture(player)
    player.push("a", b"\x00\x00" * 10)
    player.end("a")
    player.flush()
    assert [m[0]["type"] for m in sent.messages] == ["audio", "end"]
    player.push("b", b"\x00\x00" * 10)
    player.interrupt()
    assert sent.messages[-1][0] == {"type": "flush"}
    assert player.flush() == 0  # what was queued is dropped
    assert player.stats.flushes == 1


def test_played_reports_reach_handlers_and_are_checked(capture) -> None:
    player = Player()
    capture(player)
    player.push("a", b"\x00\x00" * 2400)  # 100 ms
    player.flush()
    reports: list[tuple[str, float]] = []
    player.on_played(lambda item, ms, report: reports.append((item, ms)))
    for ms in (20.0, 60.0, 100.0):
        player._on_custom(player, {"type": "played", "item_id": "a", "played_ms": ms, "underruns": 1}, [])
    player._on_custom(player, {"type": "played", "item_id": "a", "played_ms": 50.0}, [])
    player._on_custom(player, {"type": "played", "item_id": "a", "played_ms": 150.0}, [])
    player._on_custom(player, {"type": "played", "item_id": "a", "played_ms": "junk"}, [])
    assert reports[:3] == [("a", 20.0), ("a", 60.0), ("a", 100.0)]
    assert player.stats.reports == 5
    assert player.stats.non_monotonic == 1
    assert player.stats.past_received == 1
    assert player.stats.played["a"] == 150.0


def test_the_player_worklet_reports_and_flushes() -> None:
    text = str(Player._esm)
    assert 'registerProcessor("voicelab-player"' in text
    assert '"played"' in text and '"flush"' in text and "underruns" in text
