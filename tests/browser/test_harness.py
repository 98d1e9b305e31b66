"""The browser harness, proven with a stand-in widget: JupyterLab starts, an anywidget renders, a click
reaches the kernel, binary buffers travel both ways, the fake microphone delivers the WAV file through an
AudioWorklet, and a task created in a cell keeps running after the cell returned.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from browser_harness import JupyterServer, SpeechWav, open_notebook, speech_span

import voicelab

pytestmark = pytest.mark.browser

STATE = "probe_state.json"

SETUP = """
import asyncio, json, sys, time
from pathlib import Path
import numpy as np
import voicelab
from voicelab.audio.core import Audio

STATE = Path("probe_state.json")
state = {"executable": sys.executable}

def save(**changes):
    state.update(changes)
    partial = STATE.with_suffix(".partial")
    partial.write_text(json.dumps(state))
    partial.replace(STATE)  # atomic: the test never reads half a file

save()
"""

# A stand-in for the cockpit's microphone widget: on "Start", getUserMedia -> AudioWorklet at the context's
# native rate -> 4096-sample float32 batches sent to the kernel as binary buffers until the kernel says stop.
WIDGET = r'''
import anywidget

WORKLET = """
class Probe extends AudioWorkletProcessor {
  constructor() { super(); this.batch = new Float32Array(4096); this.filled = 0; }
  process(inputs) {
    const channel = inputs[0] && inputs[0][0];
    if (!channel) return true;
    let read = 0;
    while (read < channel.length) {
      const take = Math.min(channel.length - read, this.batch.length - this.filled);
      this.batch.set(channel.subarray(read, read + take), this.filled);
      this.filled += take;
      read += take;
      if (this.filled === this.batch.length) {
        this.port.postMessage(this.batch, [this.batch.buffer]);
        this.batch = new Float32Array(4096);
        this.filled = 0;
      }
    }
    return true;
  }
}
registerProcessor("voicelab-probe", Probe);
"""

ESM = """
const WORKLET = %s;
function render({ model, el }) {
  const button = document.createElement("button");
  button.textContent = "Start";
  const status = document.createElement("span");
  status.textContent = " idle";
  el.append(button, status);
  let stream = null, context = null, seq = 0;
  model.on("msg:custom", (content, buffers) => {
    if (content.kind === "ping") {
      const view = buffers[0];
      const data = new Int16Array(view.buffer.slice(view.byteOffset, view.byteOffset + view.byteLength));
      let sum = 0;
      for (const value of data) sum += value;
      model.send({ kind: "pong", length: data.length, sum }, undefined, [data.slice().reverse().buffer]);
    } else if (content.kind === "stop") {
      if (stream) stream.getTracks().forEach((track) => track.stop());
      if (context) context.close();
      status.textContent = " stopped";
    }
  });
  button.addEventListener("click", async () => {
    button.disabled = true;
    try {
      stream = await navigator.mediaDevices.getUserMedia({
        audio: { echoCancellation: false, noiseSuppression: false, autoGainControl: false },
      });
      context = new AudioContext();
      const url = URL.createObjectURL(new Blob([WORKLET], { type: "text/javascript" }));
      await context.audioWorklet.addModule(url);
      const node = new AudioWorkletNode(context, "voicelab-probe");
      node.port.onmessage = (event) => {
        model.send({ kind: "audio", seq: seq++, rate: context.sampleRate }, undefined, [event.data.buffer]);
      };
      context.createMediaStreamSource(stream).connect(node);
      node.connect(context.destination);
      await context.resume();
      model.send({ kind: "started", rate: context.sampleRate, track: stream.getAudioTracks()[0].label });
      status.textContent = " recording";
    } catch (error) {
      model.send({ kind: "error", message: String(error) });
      status.textContent = " " + String(error);
    }
  });
}
export default { render };
""" % json.dumps(WORKLET)

class MicProbe(anywidget.AnyWidget):
    _esm = ESM

PING = np.arange(-500, 1500, dtype=np.int16)

class Capture:
    """Kernel side: collect the batches, answer the ping, stop after `seconds` of audio, save captured.wav."""

    def __init__(self, seconds):
        self.seconds = seconds
        self.batches, self.seqs, self.rate, self.done = [], [], None, False

    def __call__(self, widget, content, buffers):
        kind = content.get("kind")
        if kind == "started":
            save(started=content)
            widget.send({"kind": "ping"}, buffers=[PING.tobytes()])
        elif kind == "pong":
            echo = np.frombuffer(bytes(buffers[0]), np.int16)
            save(pong={"sum": content["sum"], "length": content["length"],
                       "echo_ok": bool(np.array_equal(echo, PING[::-1]))})
        elif kind == "error":
            save(error=content["message"])
        elif kind == "audio" and not self.done:
            self.rate = int(content["rate"])
            self.seqs.append(content["seq"])
            self.batches.append(np.frombuffer(bytes(buffers[0]), np.float32).copy())
            if sum(map(len, self.batches)) >= self.seconds * self.rate:
                self.done = True
                widget.send({"kind": "stop"})
                samples = np.concatenate(self.batches)
                voicelab.write_audio("captured.wav", Audio.from_array(samples, self.rate))
                save(done=True, rate=self.rate, samples=len(samples), seqs=self.seqs,
                     expected_ping_sum=int(PING.astype(np.int64).sum()), expected_ping_length=len(PING))
'''

SHOW = """
capture = Capture(seconds={seconds})
probe = MicProbe()
probe.on_msg(capture)
probe
"""

BACKGROUND = """
async def later():
    await asyncio.sleep(1.0)
    save(background_at=time.time())

background = asyncio.create_task(later())
save(cell_returned_at=time.time())
"""


def test_widget_clicks_buffers_and_fake_mic_reach_the_kernel(
    jupyter_server: JupyterServer, page: Any, speech_wav: SpeechWav, tmp_path: Path
) -> None:
    capture_s = speech_wav.duration_s + 1.0
    jupyter_server.write_notebook("probe.ipynb", [SETUP, WIDGET, SHOW.format(seconds=capture_s), BACKGROUND])
    lab = open_notebook(page, jupyter_server, "probe.ipynb")
    lab.run_all()

    # The kernel is this venv's python, and a task created in the last cell ran after that cell returned.
    state = jupyter_server.wait_for_json(STATE, lambda s: "background_at" in s)
    assert Path(state["executable"]).resolve().parent == Path(sys.executable).resolve().parent
    assert state["background_at"] - state["cell_returned_at"] >= 0.9

    # The widget rendered; its click reaches the kernel; buffers go kernel -> browser -> kernel intact.
    lab.click("Start")
    state = jupyter_server.wait_for_json(
        STATE, lambda s: s.get("done") or "error" in s, timeout=capture_s + 30
    )
    assert "error" not in state, state["error"]
    assert state["pong"]["echo_ok"], state["pong"]
    assert state["pong"]["sum"] == state["expected_ping_sum"]
    assert state["pong"]["length"] == state["expected_ping_length"]
    assert state["seqs"] == list(range(len(state["seqs"]))), "batches were lost or reordered"
    assert state["started"]["rate"] == state["rate"]

    # The microphone delivered the WAV file (not Chromium's beep), once, at the context's native rate.
    captured = voicelab.read_audio(jupyter_server.root / "captured.wav")
    assert captured.rate == state["rate"]
    samples = np.asarray(captured.samples)
    start, end = speech_span(samples, captured.rate)
    assert end - start == pytest.approx(speech_wav.speech_s, rel=0.05)
    assert float(np.abs(samples).max()) == pytest.approx(speech_wav.peak, rel=0.1)
    inside = samples[round(start * captured.rate) : round(end * captured.rate)].astype(np.float64)
    assert float(np.sqrt(np.mean(inside**2))) == pytest.approx(speech_wav.speech_rms, rel=0.1)
    tail = samples[round(end * captured.rate) + captured.rate // 10 :]
    assert tail.size > 0 and float(np.abs(tail).max()) < 0.01, "%noloop: silence after the file"

    shot = lab.screenshot(tmp_path / "probe.png")
    assert shot.stat().st_size > 10_000
    assert lab.cell(2).get_by_text("stopped").is_visible()
    assert lab.button("Start").is_disabled()
