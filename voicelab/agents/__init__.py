"""Agents on a session: Agent, tools, stubs, approvals, output guardrails, handoffs, delegation, history."""

from voicelab.agents.agent import UNSET, Agent
from voicelab.agents.approvals import DEFAULT_REJECTION_MESSAGE, Approvals
from voicelab.agents.delegation import OpenAIResponder, ScriptedResponder, delegate_tool
from voicelab.agents.events import AgentHandoff, GuardrailTripped, ToolApprovalRequired, ToolCall, ToolStart
from voicelab.agents.guardrails import GuardrailResult, OutputGuardrail, output_guardrail
from voicelab.agents.handoffs import Handoff, TransferAgents, handoff
from voicelab.agents.history import send_message, update_history
from voicelab.agents.runtime import AgentRuntime
from voicelab.agents.stubs import PendingCall, Stubs
from voicelab.agents.tools import FunctionTool, ToolContext, tool

__all__ = [
    "DEFAULT_REJECTION_MESSAGE",
    "UNSET",
    "Agent",
    "AgentHandoff",
    "AgentRuntime",
    "Approvals",
    "FunctionTool",
    "GuardrailResult",
    "GuardrailTripped",
    "Handoff",
    "OpenAIResponder",
    "OutputGuardrail",
    "PendingCall",
    "ScriptedResponder",
    "Stubs",
    "ToolApprovalRequired",
    "ToolCall",
    "ToolContext",
    "ToolStart",
    "TransferAgents",
    "delegate_tool",
    "handoff",
    "output_guardrail",
    "send_message",
    "tool",
    "update_history",
]
