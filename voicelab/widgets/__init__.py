"""The notebook cockpit: `Lab` (a live session in the background and its panels), and its widgets.

Widgets are the leaf layer: they import everything below and nothing imports them. anywidget's JS lives in
sibling `.js` files; audio crosses as binary buffers.
"""

from voicelab.widgets.eventlog import EventLog
from voicelab.widgets.lab import Lab, LabError, Pending, default_recording_folder
from voicelab.widgets.mic import Microphone
from voicelab.widgets.player import Player
from voicelab.widgets.prompt_panel import PromptPanel
from voicelab.widgets.tail import RecordingTail
from voicelab.widgets.timeline import Timeline

__all__ = [
    "EventLog",
    "Lab",
    "LabError",
    "Microphone",
    "Pending",
    "Player",
    "PromptPanel",
    "RecordingTail",
    "Timeline",
    "default_recording_folder",
]
