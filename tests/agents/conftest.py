"""Fixtures of the agents tests (helpers live in agents_helpers.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from agents_helpers import record_agents_demo


@pytest.fixture(scope="session")
def agents_demo_recording(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The acceptance conversation's recording folder (made once per test session): a stubbed tool, a manual
    stub answered by code, an approved tool call, a guardrail trip and a handoff (embedded server)."""
    return record_agents_demo(tmp_path_factory.mktemp("agents_demo") / "recording")
