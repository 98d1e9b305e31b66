"""Generate the cockpit notebook (run: python notebooks/make_cockpit.py).

The notebook ships inside the package (voicelab/data/notebooks/cockpit.ipynb, opened by `voicelab lab`);
notebooks/cockpit.ipynb is a link to it. tests/test_notebooks.py executes it headless (the cells after the
cockpit connect from code and play the demo caller, so it runs without a browser) and checks that this
generator and the committed notebook agree.
"""

from __future__ import annotations

from pathlib import Path

import nbformat

from voicelab.notebook_cells import build_notebook, write_notebook

HERE = Path(__file__).resolve().parent
TARGET = HERE / "cockpit.ipynb"

CELLS: list[tuple[str, str, list[str]]] = [
    (
        "markdown",
        """# voicelab cockpit: talk to a returns-desk agent

Run the first three cells, then **click Connect** in the cockpit and speak into your microphone (the browser
asks for permission; it needs http://localhost or https). Ask to return an order and give an order number:
the agent calls `lookup_order`, a **manual stub**, and waits for you to type its answer in the panel on the
right and click **Answer**. Ask for the return label: `create_return_label` needs your **approval**.

No key is needed: `Lab.local` starts voicelab's embedded Realtime-compatible server, whose replies come
from a script (it is not a language model). With `OPENAI_API_KEY` set, the same cockpit talks to the real
Realtime API. Everything is recorded under `recordings/`.""",
        [],
    ),
    (
        "code",
        """import os

import voicelab
from voicelab import Agent, Stubs, tool


@tool
def lookup_order(order_number: str) -> str:
    \"\"\"Look up an order by its number.

    Args:
        order_number: The order number as the caller said it.
    \"\"\"
    raise NotImplementedError("answered by a manual stub in the cockpit")


@tool(needs_approval=True)
def create_return_label(delivery: str = "email") -> str:
    \"\"\"Create a prepaid return label for the order being returned.

    Args:
        delivery: How to send the label: email or post.
    \"\"\"
    return f"The return label is on its way by {delivery}."


agent = Agent(
    name="returns_desk",
    instructions=(
        "You are the returns desk of an online shop: warm, brief, precise. Ask for the order number, look "
        "the order up with lookup_order, then offer a return label and create it with create_return_label."
    ),
    tools=[lookup_order, create_return_label],
    stubs=Stubs().manual("lookup_order"),
    voice="marin",
    turn_detection={"type": "server_vad", "silence_duration_ms": 500},
    transcription={"model": "gpt-4o-mini-transcribe"},
)
agent""",
        ["text:returns_desk"],
    ),
    (
        "code",
        """if os.environ.get("OPENAI_API_KEY"):
    lab = voicelab.Lab(agent)  # the real Realtime API
else:
    lab = voicelab.Lab.local(agent, script="returns_desk")  # embedded server: no key, no network
lab""",
        ["text:Lab(state="],
    ),
    (
        "markdown",
        """## No microphone? Drive the same call from code

Clicking Connect and speaking is the whole point, but every control is also plain Python. The next cells
connect, speak the demo caller's first two turns (a WAV/FLAC works too: `lab.play_audio("caller.wav")`),
answer the manual stub and approve the label from code; the cockpit above updates live as they run. Each
call returns at once (the session runs in the background), so `await` what you want to wait for.""",
        [],
    ),
    (
        "code",
        """from voicelab.demo import caller_turns

caller = caller_turns()  # the demo caller's turns, as voicelab.Audio
session = await lab.connect()
answered = lab.wait_for("response_done")  # waits from here on: ask before acting, await after
await lab.play_audio(caller[0])
await answered
print(lab.transcript.text())""",
        ["text:user:"],
    ),
    (
        "code",
        """lab.play_audio(caller[1])  # "The order number is four five six seven."
call = await lab.stubs.wait_pending("lookup_order", timeout=30)
print("pending:", call.name, call.arguments)
answered = lab.wait_for("response_done", lambda e: e.status == "completed")
lab.answer(call.call_id, "Order 4567 was delivered on March 3rd and can be returned until April 2nd.")
await answered""",
        ["text:pending: lookup_order"],
    ),
    (
        "code",
        """asked = lab.wait_for("tool_approval_required", timeout=30)
lab.play_audio(caller[2])  # "Yes, please send me the return label."
approval = await asked
labelled = lab.wait_for("tool_call", lambda e: e.name == "create_return_label")
answered = lab.wait_for("response_done", lambda e: e.status == "completed")
lab.approve(approval.call_id)
await labelled
await answered
print(lab.transcript.text())""",
        ["text:create_return_label"],
    ),
    (
        "markdown",
        """## Tables, turns, stubs

The tables refresh in the cockpit while the call runs; here they are as DataFrames. `save_turns` keeps the
caller's turns as WAV clips with a manifest: the scenarios that prompt variants are replayed against.
`save_stubs` turns the answers you typed into fixtures for the next run.""",
        [],
    ),
    (
        "code",
        """frames = lab.tables()
columns = ["turn", "kind", "eos_to_first_audio_ms", "speech_end_to_first_audio_ms", "tool_ms", "interrupted"]
frames["turns"][columns]""",
        ["text:eos_to_first_audio_ms"],
    ),
    (
        "code",
        """frames["tool_calls"][["name", "arguments", "output", "stub_kind", "approval"]]""",
        ["text:lookup_order"],
    ),
    (
        "code",
        """await lab.disconnect()
turns_folder = lab.save_turns("my_turns")
stubs_file = lab.save_stubs("stubs.json")
print(lab.recording_path, turns_folder, stubs_file, sep="\\n")""",
        ["text:my_turns"],
    ),
    (
        "code",
        """await lab.close()  # stops the embedded server too""",
        [],
    ),
]


def build() -> nbformat.NotebookNode:
    """The cockpit notebook, without outputs (stable cell ids, so regenerating gives the same file)."""
    return build_notebook(CELLS)


if __name__ == "__main__":
    write_notebook(TARGET, CELLS)
