"""Generate notebooks/walkthrough.ipynb (run: python notebooks/make_walkthrough.py).

Cells are written here so the notebook stays reviewable as code; tests/test_notebooks.py executes it headless
and checks that the generator and the committed notebook agree. A code cell's `expect` list names outputs it
must produce (a MIME type, or "text:" and a substring).
"""

from __future__ import annotations

from pathlib import Path

import nbformat

from voicelab.notebook_cells import build_notebook, write_notebook

HERE = Path(__file__).resolve().parent
TARGET = HERE / "walkthrough.ipynb"

CELLS: list[tuple[str, str, list[str]]] = [
    (
        "markdown",
        """# voicelab walkthrough: a returns-desk voice agent, offline

This notebook runs a whole voice conversation **without an API key or network**: voicelab's embedded
Realtime-compatible server plays the model (its replies come from a script, it never pretends to be a
language model), a recorded caller speaks four turns into the session through server VAD, and everything
is recorded to disk. Then we look at the transcript, the pandas tables (turns and latency, tool calls, token
usage) and one figure of the whole session.""",
        [],
    ),
    (
        "code",
        """import json

from IPython.display import Image

import voicelab
from voicelab import tables
from voicelab.caller import play_turns
from voicelab.demo import caller_turns
from voicelab.plots import plot_recording
from voicelab.speech.corpus import CONVERSATIONS

print("voicelab", voicelab.__version__)""",
        ["text:voicelab"],
    ),
    (
        "markdown",
        """## 1. Start the embedded server

`voicelab.serve()` starts a Realtime GA server on 127.0.0.1 with a bundled script for a returns desk.
`pace="realtime"` streams the scripted replies at speaking speed, as the real API does (`pace="fast"` sends
them at once).""",
        [],
    ),
    (
        "code",
        """server = voicelab.serve("returns_desk", pace="realtime")  # a bundled script, or a path to your own
print(server.url)""",
        ["text:ws://127.0.0.1"],
    ),
    (
        "markdown",
        """## 2. Define the agent, with a stubbed tool

The tool has no backend yet, so a stub answers it (as in the Realtime Playground). Stubs override the
implementation while they are set; `stubs.manual(...)` would instead wait for an answer typed in the
notebook.""",
        [],
    ),
    (
        "code",
        """@voicelab.tool
def lookup_order(order_number: str) -> str:
    \"\"\"Look up an order by its number.\"\"\"
    raise NotImplementedError("no order backend yet: the stub answers")


@voicelab.tool
def create_return_label(delivery: str = "email") -> str:
    \"\"\"Create a prepaid return label for the order being returned.\"\"\"
    raise NotImplementedError("no label service yet: the stub answers")


stubs = (
    voicelab.Stubs()
    .template("lookup_order", "Order {order_number} was delivered last week and can be returned.")
    .template("create_return_label", "The return label is on its way by {delivery}.")
)
agent = voicelab.Agent(
    name="returns_desk",
    instructions="You are the returns desk of a small shop. Be brief and friendly.",
    tools=[lookup_order, create_return_label],
    stubs=stubs,
    turn_detection={"type": "server_vad", "silence_duration_ms": 500},
    transcription={"model": "gpt-4o-mini-transcribe"},
)
print(json.dumps(agent.session_config().to_session(), indent=1)[:600])""",
        ["text:server_vad"],
    ),
    (
        "markdown",
        """## 3. Run the caller through the session

The caller is the demo's synthetic caller: `caller_turns("returns")` speaks the four lines below with the
bundled offline voice and gives one `Audio` per turn (use `voicelab.read_audio(path)` for your own
recordings, one file per turn). The microphone never stops: between turns it sends silence, so the
server's VAD ends each turn exactly as on a call. The audio is sent in real time, so this cell takes about
as long as the call (under a minute). `play_turns(..., realtime=False)` with `serve(pace="fast")` runs it in
about a second, but then the audio tracks run ahead of the event clock and the figure below no longer lines
up.""",
        [],
    ),
    (
        "code",
        """turns = caller_turns("returns")
for audio, line in zip(turns, CONVERSATIONS["returns"], strict=True):
    print(f"{audio.duration_ms:>6.0f} ms  {line}")""",
        ["text:order number"],
    ),
    (
        "code",
        """async with voicelab.connect(agent, url=server.url, record_dir="recordings/walkthrough") as session:
    report = await play_turns(session, turns)
rec = voicelab.load_recording(session.recording_path)
print(rec)
print("responses:", report.responses)
print("recorded in", rec.path)""",
        ["text:Recording("],
    ),
    (
        "markdown",
        """## 4. The transcript

`tables.history` has a row per conversation item, in order, with the active agent, the text (the input
transcription for the caller's audio), the audio length, and whether it was interrupted.""",
        [],
    ),
    (
        "code",
        """history = tables.history(rec)
history[["role_or_type", "agent", "text", "audio_ms", "interrupted"]]""",
        ["text/html", "text:assistant"],
    ),
    (
        "markdown",
        """## 5. Turns, latency, tool calls, usage

`eos_to_first_audio_ms` is the time from the end of the caller's speech (the server's `speech_stopped`) to
the first assistant audio: the number to watch while tuning a prompt.""",
        [],
    ),
    (
        "code",
        """turn_table = tables.turns(rec)
latency = ["speech_stop_ms", "first_audio_ms", "eos_to_first_audio_ms", "tool_ms"]
turn_table[["turn", "kind", *latency, "status"]]""",
        ["text/html", "text:eos_to_first_audio_ms"],
    ),
    (
        "code",
        """tables.tool_calls(rec)""",
        ["text/html", "text:lookup_order"],
    ),
    (
        "code",
        """tables.usage(rec)""",
        ["text/html", "text:response_id"],
    ),
    (
        "markdown",
        """`tables.compare({"v1": rec1, "v2": rec2})` puts the summary of several runs side by side (turns,
median latency, tool calls, guardrail trips, interruptions, tokens) for prompt iteration. Here is the one
run:""",
        [],
    ),
    (
        "code",
        """tables.compare({"walkthrough": rec})""",
        ["text/html", "text:median_eos_to_first_audio_ms"],
    ),
    (
        "markdown",
        """## 6. The session on one clock

`plot_recording(rec)` draws the whole session from the recording alone: the caller's audio (input track)
and the assistant's (output track), the turns the server's VAD reported, each response from created to done
and each tool call below, interruptions and guardrail trips as marks. It returns a matplotlib `Figure` (it
never calls `plt.show()`): save it, or show it as here.""",
        [],
    ),
    (
        "code",
        """figure = plot_recording(rec, title="walkthrough: caller, assistant, VAD turns, responses, tools")
figure.savefig(rec.path / "session.png")
Image(filename=rec.path / "session.png")""",
        ["image/png"],
    ),
    (
        "code",
        """server.close()""",
        [],
    ),
    (
        "markdown",
        """## 7. Against the real OpenAI Realtime API

Nothing above depends on the embedded server. To run the same agent against the real API, set the
`OPENAI_API_KEY` environment variable (never paste the key into a notebook) and leave `url` out
(`url=None`, the default):

```python
async with voicelab.connect(agent, record_dir="recordings/real") as session:
    report = await play_turns(session, turns)
```

The recording never contains the key, and the tables and figures work the same way.""",
        [],
    ),
]


def build() -> nbformat.NotebookNode:
    """The walkthrough notebook, without outputs (stable cell ids, so regenerating gives the same file)."""
    return build_notebook(CELLS)


if __name__ == "__main__":
    write_notebook(TARGET, CELLS)
