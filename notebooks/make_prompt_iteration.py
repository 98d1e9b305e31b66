"""Generate notebooks/prompt_iteration.ipynb (run: python notebooks/make_prompt_iteration.py).

Cells are written here so the notebook stays reviewable as code; tests/test_notebooks.py executes it headless
and checks that the generator and the committed notebook agree. A code cell's `expect` list names outputs it
must produce (a MIME type, or "text:" and a substring).
"""

from __future__ import annotations

from pathlib import Path

import nbformat

from voicelab.notebook_cells import build_notebook, write_notebook

HERE = Path(__file__).resolve().parent
TARGET = HERE / "prompt_iteration.ipynb"

CELLS: list[tuple[str, str, list[str]]] = [
    (
        "markdown",
        """# Prompt iteration: record a caller, compare two prompts, export the better one

Offline, without an API key: record three caller turns, turn them into a **scenario** (the caller's audio,
the tool outputs to stub, what should happen), run **two prompt variants** against it on the embedded
server, read the comparison table and figure, and **export** the better variant as OpenAI Agents SDK code,
which we then run.

The embedded server is not a language model: its replies come from a script. The bundled `returns_prompts`
script answers differently depending on the session instructions (a prompt that asks to repeat numbers back
gets the order number read back), so the experiment has something to tell apart. Against the real API
(`url="openai"`), the same code compares what the model does with each prompt.""",
        [],
    ),
    (
        "code",
        """from IPython.display import Image

import voicelab
from voicelab import clips
from voicelab.caller import play_turns
from voicelab.demo import caller_turns, returns_desk_agent
from voicelab.prompts import Prompt
from voicelab.scenarios import Scenario, expect

print("voicelab", voicelab.__version__)""",
        ["text:voicelab"],
    ),
    (
        "markdown",
        """## 1. Record three caller turns in the cockpit

`voicelab.Lab.local` opens the cockpit on the embedded server (microphone, player, transcript, tools, tables,
settings and a prompt editor). You would speak into its microphone; here a recorded caller speaks into the
cockpit's session instead (`play_turns`). Server VAD cuts the turns and everything is recorded;
`lab.save_turns(folder)` then cuts the caller's turns out of the recording's input track into
`turn-001.wav`, ... with a `manifest.json` (where each turn was, and its transcription).""",
        [],
    ),
    (
        "code",
        """base = returns_desk_agent()  # tools lookup_order and create_return_label, a handoff to a person
lab = voicelab.Lab.local(base, script="returns_prompts", pace="fast")
lab.view""",
        [],
    ),
    (
        "code",
        """session = await lab.connect()
await play_turns(session, caller_turns("returns")[:3], realtime=False)  # or speak into the microphone
await lab.disconnect()

folder = lab.save_turns("my-caller")
for clip in clips.load_turns(folder):
    print(clip.file.name, f"{clip.audio.duration_ms:.0f} ms", repr(clip.transcript))""",
        ["text:turn-003.wav", "text:'The order number is four five six seven.'"],
    ),
    (
        "markdown",
        """## 2. A scenario of those turns

A scenario is the caller's turns (clips, files, or text for the offline TTS), tool outputs to stub, and
expectations: tools called with arguments, phrases said or never said, a handoff, no guardrail trip, a
latency bound. It saves as a folder with a manifest.""",
        [],
    ),
    (
        "code",
        """scenario = Scenario.from_turns(
    folder,
    name="order-return",
    stubs={"lookup_order": "It was delivered on March third."},
    expect=[
        expect.tool("lookup_order", {"order_number": "four five six seven"}),
        expect.tool("create_return_label"),
        expect.says("read that back"),
        expect.never_says("sorry"),
        expect.first_audio_within(1500),
    ],
)
scenario.save("scenarios/order-return")
Scenario.load("scenarios/order-return")""",
        ["text:Scenario(name='order-return', turns=3"],
    ),
    (
        "markdown",
        """## 3. Two prompt variants

`Prompt` follows the voice agents guide's layout (Role and Objective, Personality and Tone, Instructions,
Conversation States, ...). `render()` is the Markdown the agent gets; `validate(agent)` points at problems,
such as states that collect numbers without the guide's rule to repeat them back.""",
        [],
    ),
    (
        "code",
        """v1 = Prompt(
    role="You are the returns desk of an online shop. Get the caller a return label.",
    tone="Warm and precise.",
    tools="Look orders up with `lookup_order`; create labels with `create_return_label`.",
    states=[
        {"id": "1_order_number", "description": "Ask for the order number.", "transitions": ["2_label"]},
        {"id": "2_label", "description": "Offer a return label and create it."},
    ],
)
v2 = v1.replace(instructions="When the caller gives a number or a name, repeat it back to confirm it.")
for finding in v1.validate(base):
    print(finding)
print(v1.diff(v2))""",
        ["text:never says to repeat them back", "text:+When the caller gives a number"],
    ),
    (
        "code",
        """result = await voicelab.experiment(
    {"v1": v1, "v2": v2},
    [scenario],
    repeats=2,
    base=base,
    script="returns_prompts",
    out_dir="experiments/prompt-iteration",
)
columns = ["runs", "pass_rate", "tool_call_accuracy", "first_audio_p50_ms", "first_audio_p95_ms"]
result.summary[columns]""",
        ["text:pass_rate", "text:v2"],
    ),
    (
        "code",
        """result.runs[["run_id", "passed", "failures", "tool_calls", "first_audio_p50_ms", "cost_usd"]]""",
        ["text:v2__order-return__1", "text:never said 'read that back'"],
    ),
    (
        "code",
        """Image(filename=result.save_figure())""",
        ["image/png"],
    ),
    (
        "markdown",
        """Every run was recorded under `experiments/prompt-iteration/runs/`; running the cell again reuses
the finished runs (after a kernel restart too) and runs only what is missing.

## 4. Export the better variant and run it

`voicelab.export(agent, format, path)` writes the agent as `session-update` JSON, `agents-python`,
`agents-typescript`, an openai-realtime-agents module (`realtime-agents`), `markdown` or `tools-json`, with
its provenance: the prompt's hash and the experiment runs it was chosen from. The Python export is a module
for the OpenAI Agents SDK (`pip install 'voicelab[agents]'`); its tools answer with the stubbed outputs until
you put the real implementations in.""",
        [],
    ),
    (
        "code",
        """best = result.best
code = voicelab.export(result.agent(best), "agents-python", "returns_desk_agent.py", experiment=result)
print(best)
print(code[: code.index("from __future__")])""",
        ["text:v2", "text:Chosen in experiment"],
    ),
    (
        "code",
        """import importlib

import returns_desk_agent

importlib.reload(returns_desk_agent)
question = "The order number is four five six seven."
await returns_desk_agent.ask(question, url=lab.server.url, api_key="sk-local")""",
        ["text:Let me read that back, four five six seven."],
    ),
    (
        "code",
        """await lab.close()  # stops the cockpit's embedded server too""",
        [],
    ),
]


def build() -> nbformat.NotebookNode:
    """The notebook, without outputs (stable cell ids, so regenerating gives the same file)."""
    return build_notebook(CELLS)


if __name__ == "__main__":
    write_notebook(TARGET, CELLS)
