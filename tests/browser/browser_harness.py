"""A real browser against a real JupyterLab: the pieces the browser tests are made of.

- `JupyterServer` / `start_jupyter`: JupyterLab on 127.0.0.1 in a temporary root, with temporary config,
  data, runtime, settings and workspace dirs, a fixed token and `window.jupyterapp` exposed; `stop()` ends
  the process group it started (and the kernels that server started), never anything else.
- `launch_chromium`: Debian's Chromium (`/usr/bin/chromium`, never `playwright install`) in the new headless
  mode, with a WAV file as the fake microphone.
- `LabNotebook` / `open_notebook`: open a notebook in JupyterLab, wait for its kernel to be idle, run all
  cells (raising with the traceback of any failing cell), click buttons by accessible name, read outputs.
- `make_speech_wav`: a spoken utterance with silence around it, for the fake microphone.

Kernel-side state comes back through files: notebook cells write JSON into the server root and the test
reads it with `JupyterServer.wait_for_json`.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page, Playwright

CHROMIUM = os.environ.get("VOICELAB_CHROMIUM", "/usr/bin/chromium")
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
READY_TIMEOUT_S = 90.0

# Flags for Chromium as root in a container, with a WAV file as the microphone. Playwright gives every launch
# a fresh temporary --user-data-dir of its own (and deletes it on close).
CHROMIUM_FLAGS = (
    "--headless=new",  # the full browser without a window; the old headless shell rejects getUserMedia
    "--use-fake-ui-for-media-stream",  # grant the microphone without a prompt
    "--use-fake-device-for-media-stream",
    "--autoplay-policy=no-user-gesture-required",
    "--no-sandbox",  # needed as root
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)


def browser_unavailable_reason() -> str | None:
    """Why a browser test cannot run here (Playwright or Chromium missing), or None when it can."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return 'the playwright package is missing: pip install -e ".[test]"'
    if not (os.path.isfile(CHROMIUM) and os.access(CHROMIUM, os.X_OK)):
        return (
            f"Chromium is not at {CHROMIUM}: apt-get install -y --no-install-recommends chromium "
            "(bash scripts/test.sh does it when run as root), or set VOICELAB_CHROMIUM"
        )
    return None


# -- speech for the fake microphone --------------------------------------------------------------------------


@dataclass(frozen=True)
class SpeechWav:
    """A WAV file for `--use-file-for-fake-audio-capture`, and what a test needs to recognise it."""

    path: Path
    text: str
    rate: int
    duration_s: float
    speech_start_s: float  # first sample above SPEECH_THRESHOLD
    speech_end_s: float  # last sample above SPEECH_THRESHOLD
    peak: float
    speech_rms: float  # RMS between speech_start_s and speech_end_s

    @property
    def speech_s(self) -> float:
        return self.speech_end_s - self.speech_start_s


SPEECH_THRESHOLD = 0.02


def speech_span(samples: np.ndarray, rate: int, threshold: float = SPEECH_THRESHOLD) -> tuple[float, float]:
    """Seconds of the first and last sample whose magnitude is above `threshold`; (0, 0) for silence."""
    loud = np.flatnonzero(np.abs(samples) > threshold)
    if loud.size == 0:
        return 0.0, 0.0
    return float(loud[0] / rate), float((loud[-1] + 1) / rate)


def make_speech_wav(
    path: Path, text: str, *, lead_s: float = 1.0, tail_s: float = 1.0, voice: str = "alloy"
) -> SpeechWav:
    """Speak `text` offline (voicelab.speech, 24 kHz mono) with silence before and after, and write a WAV.

    The leading silence covers the time between Chromium opening the fake device and the page's worklet
    connecting to it; the trailing silence lets a test see the end of the speech.
    """
    import voicelab
    from voicelab.audio.core import Audio
    from voicelab.speech import synthesize

    spoken = synthesize(text, voice=voice)
    rate = spoken.rate
    samples = np.concatenate(
        [
            np.zeros(round(lead_s * rate), np.float32),
            np.asarray(spoken.samples, np.float32),
            np.zeros(round(tail_s * rate), np.float32),
        ]
    )
    voicelab.write_audio(path, Audio.from_array(samples, rate))
    start, end = speech_span(samples, rate)
    inside = samples[round(start * rate) : round(end * rate)]
    return SpeechWav(
        path=Path(path).resolve(),
        text=text,
        rate=rate,
        duration_s=len(samples) / rate,
        speech_start_s=start,
        speech_end_s=end,
        peak=float(np.abs(samples).max()),
        speech_rms=float(np.sqrt(np.mean(inside.astype(np.float64) ** 2))),
    )


# -- JupyterLab ----------------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _child_pids(pid: int) -> list[int]:
    """Direct children of `pid` (Linux /proc): the kernels a Jupyter server started in their own sessions."""
    children = []
    for status in Path("/proc").glob("[0-9]*/status"):
        with contextlib.suppress(OSError):
            for line in status.read_text().splitlines():
                if line.startswith("PPid:"):
                    if int(line.split()[1]) == pid:
                        children.append(int(status.parent.name))
                    break
    return children


@dataclass
class JupyterServer:
    """A running JupyterLab: `url` (no trailing slash), `token`, `root` (its root and the kernels' cwd)."""

    url: str
    token: str
    root: Path
    process: subprocess.Popen[bytes]
    log_path: Path
    started_s: float = 0.0  # seconds from launch until /api/status answered
    _kernel_pids: set[int] = field(default_factory=set)

    # files in the root
    def write_notebook(self, name: str, cells: Sequence[str]) -> Path:
        """Write `cells` (code, or markdown when a cell starts with "%%md\\n") as NAME.ipynb in the root."""
        import nbformat

        from voicelab.notebook_cells import build_notebook

        nb = build_notebook(
            [("markdown", c[5:], ()) if c.startswith("%%md\n") else ("code", c, ()) for c in cells]
        )
        name = name if name.endswith(".ipynb") else f"{name}.ipynb"
        path = self.root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(nb, path)
        return path

    def read_json(self, name: str) -> Any:
        """The JSON file NAME in the root, or None while it does not exist or is half written."""
        try:
            return json.loads((self.root / name).read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            return None

    def wait_for_json(
        self, name: str, until: Callable[[Any], bool] = lambda _: True, *, timeout: float = 30.0
    ) -> Any:
        """Poll the JSON file NAME in the root until `until(data)` holds; fail with its last content."""
        deadline = time.monotonic() + timeout
        data = None
        while time.monotonic() < deadline:
            data = self.read_json(name)
            if data is not None and until(data):
                return data
            self.check_alive()
            time.sleep(0.1)
        raise AssertionError(
            f"{name} in {self.root} did not reach the expected state in {timeout:.0f} s: {data!r}"
        )

    # the server
    def lab_url(self, notebook: str) -> str:
        """The JupyterLab URL that opens `notebook` in a fresh workspace."""
        return f"{self.url}/lab/tree/{notebook}?reset&token={self.token}"

    def api(self, method: str, path: str) -> Any:
        request = urllib.request.Request(
            f"{self.url}{path}", method=method, headers={"Authorization": f"token {self.token}"}
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            body = response.read()
        return json.loads(body) if body else None

    def check_alive(self) -> None:
        if self.process.poll() is not None:
            raise RuntimeError(f"JupyterLab exited with {self.process.returncode}:\n{self.log_tail()}")

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def shutdown_kernels(self) -> None:
        """Shut down every kernel of this server (the next notebook starts with a fresh one)."""
        self._kernel_pids.update(_child_pids(self.process.pid))
        with contextlib.suppress(OSError, urllib.error.URLError):
            for kernel in self.api("GET", "/api/kernels"):
                with contextlib.suppress(OSError, urllib.error.URLError):
                    self.api("DELETE", f"/api/kernels/{kernel['id']}")

    def stop(self) -> None:
        """End the server's process group and the kernels it started (their own sessions), by pid."""
        if self.process.poll() is None:
            self.shutdown_kernels()
            self._kernel_pids.update(_child_pids(self.process.pid))
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)
        for pid in self._kernel_pids:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)


def start_jupyter(workdir: Path, *, timeout: float = READY_TIMEOUT_S) -> JupyterServer:
    """Start JupyterLab (this interpreter's, so the python3 kernel is this venv's) in WORKDIR/root.

    Config, data, runtime, settings and workspaces live under WORKDIR too, so nothing of the user's Jupyter
    setup leaks in and nothing is left behind. Returns once /api/status answers.
    """
    workdir = Path(workdir)
    root = workdir / "root"
    dirs = {
        name: workdir / name for name in ("config", "data", "runtime", "settings", "workspaces", "ipython")
    }
    for path in (root, *dirs.values()):
        path.mkdir(parents=True, exist_ok=True)
    # No "news" and "update available" toasts over the notebook.
    notification = (
        dirs["settings"] / "@jupyterlab" / "apputils-extension" / "notification.jupyterlab-settings"
    )
    notification.parent.mkdir(parents=True, exist_ok=True)
    notification.write_text(json.dumps({"checkForUpdates": False, "fetchNews": "false"}))
    env = {
        **os.environ,
        "JUPYTER_CONFIG_DIR": str(dirs["config"]),
        "JUPYTER_DATA_DIR": str(dirs["data"]),
        "JUPYTER_RUNTIME_DIR": str(dirs["runtime"]),
        "JUPYTERLAB_SETTINGS_DIR": str(dirs["settings"]),
        "JUPYTERLAB_WORKSPACES_DIR": str(dirs["workspaces"]),
        "IPYTHONDIR": str(dirs["ipython"]),
        "JUPYTER_PLATFORM_DIRS": "1",
        "PYTHONUNBUFFERED": "1",
    }
    env.pop("JUPYTER_PATH", None)
    token = secrets.token_hex(16)
    port = free_port()
    command = [
        sys.executable,
        "-m",
        "jupyterlab",
        "--allow-root",
        "--no-browser",
        "--ServerApp.open_browser=False",
        "--ServerApp.ip=127.0.0.1",
        f"--ServerApp.port={port}",
        "--ServerApp.port_retries=0",
        f"--IdentityProvider.token={token}",
        f"--ServerApp.root_dir={root}",
        "--LabApp.expose_app_in_browser=True",  # window.jupyterapp, to run cells and read kernel status
        "--LabApp.extension_manager=readonly",  # no PyPI queries
        "--ServerApp.terminals_enabled=False",
    ]
    log_path = workdir / "jupyterlab.log"
    began = time.monotonic()
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            command, cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    server = JupyterServer(
        url=f"http://127.0.0.1:{port}", token=token, root=root, process=process, log_path=log_path
    )
    try:
        deadline = time.monotonic() + timeout
        while True:
            server.check_alive()
            try:
                server.api("GET", "/api/status")
                break
            except (OSError, urllib.error.URLError):
                if time.monotonic() > deadline:
                    raise RuntimeError(
                        f"JupyterLab did not answer /api/status in {timeout:.0f} s:\n{server.log_tail()}"
                    ) from None
                time.sleep(0.2)
    except BaseException:
        server.stop()
        raise
    server.started_s = time.monotonic() - began
    return server


# -- Chromium ------------------------------------------------------------------------------------------------


def launch_chromium(playwright: Playwright, *, fake_mic: Path | None = None) -> Browser:
    """Debian's Chromium in the new headless mode; `fake_mic` (a WAV) is played once as the microphone.

    Without a file, Chromium's fake device plays its own beep: a test that checks audio must pass one.
    """
    args = list(CHROMIUM_FLAGS)
    if fake_mic is not None:
        fake_mic = Path(fake_mic).resolve()
        if not fake_mic.is_file():
            raise FileNotFoundError(f"fake microphone file {fake_mic} does not exist")
        args.append(f"--use-file-for-fake-audio-capture={fake_mic}%noloop")
    # headless=False: Playwright adds no headless flag of its own; --headless=new above makes it windowless.
    return playwright.chromium.launch(executable_path=CHROMIUM, headless=False, args=args)


# -- a notebook in JupyterLab --------------------------------------------------------------------------------

# The notebook panel whose path is `path`, from the app JupyterLab exposes as window.jupyterapp.
_FIND_PANEL = """
(path) => {
  const app = window.jupyterapp;
  for (const widget of app.shell.widgets('main')) {
    if (widget.context && widget.context.path === path && widget.sessionContext) return widget;
  }
  return null;
}
"""

_KERNEL_STATUS = f"""
(path) => {{
  const panel = ({_FIND_PANEL})(path);
  if (!panel || !panel.context.isReady) return null;
  const kernel = panel.sessionContext.session && panel.sessionContext.session.kernel;
  return kernel ? kernel.status : null;
}}
"""

_RUN_ALL = f"""
async (path) => {{
  const app = window.jupyterapp;
  const panel = ({_FIND_PANEL})(path);
  app.shell.activateById(panel.id);
  await app.commands.execute('notebook:run-all-cells');
  return true;
}}
"""

_NOTEBOOK_JSON = f"""
(path) => ({_FIND_PANEL})(path).context.model.toJSON()
"""


class NotebookError(AssertionError):
    """A cell of a notebook run in the browser raised."""


@dataclass
class LabNotebook:
    """A notebook open in JupyterLab in `page`; `server` is the JupyterServer that serves it."""

    page: Page
    server: JupyterServer
    path: str
    opened_s: float = 0.0  # seconds from page.goto until the kernel was idle

    def kernel_status(self) -> str | None:
        return self.page.evaluate(_KERNEL_STATUS, self.path)

    def wait_idle(self, timeout: float = 60.0) -> None:
        """Wait until the notebook's kernel reports idle."""
        deadline = time.monotonic() + timeout
        status = None
        while time.monotonic() < deadline:
            status = self.kernel_status()
            if status == "idle":
                return
            self.server.check_alive()
            self.page.wait_for_timeout(100)
        raise AssertionError(f"the kernel of {self.path} is {status!r}, not idle, after {timeout:.0f} s")

    def run_all(self, timeout: float = 120.0) -> None:
        """Run all cells (JupyterLab's notebook:run-all-cells), wait until done, raise if a cell raised."""
        self.page.evaluate(_RUN_ALL, self.path)  # resolves once every cell has executed
        self.wait_idle(timeout)
        errors = self.errors()
        if errors:
            raise NotebookError(f"{self.path}: a cell raised:\n" + "\n\n".join(errors))

    def notebook_json(self) -> dict[str, Any]:
        """The notebook as JupyterLab holds it now (nbformat JSON, outputs included)."""
        return self.page.evaluate(_NOTEBOOK_JSON, self.path)

    def errors(self) -> list[str]:
        """Each error output of the notebook: the cell's source and its traceback."""
        found = []
        for cell in self.notebook_json()["cells"]:
            for output in cell.get("outputs", []):
                if output.get("output_type") == "error":
                    source = cell["source"] if isinstance(cell["source"], str) else "".join(cell["source"])
                    found.append(
                        f"{source}\n-> {output.get('ename')}: {output.get('evalue')}\n"
                        + _strip_ansi("\n".join(output.get("traceback", [])))
                    )
        return found

    def output_text(self, index: int) -> str:
        """The text outputs (stream, text/plain) of code or markdown cell number `index` (0-based)."""
        cell = self.notebook_json()["cells"][index]
        parts = []
        for output in cell.get("outputs", []):
            if output.get("output_type") == "stream":
                text = output.get("text", "")
            else:
                text = output.get("data", {}).get("text/plain", "")
            parts.append(text if isinstance(text, str) else "".join(text))
        return "".join(parts)

    def button(self, name: str) -> Any:
        """The button whose accessible name is `name` (its text or aria-label), as a Playwright locator."""
        return self.page.get_by_role("button", name=name, exact=True)

    def click(self, name: str, timeout: float = 30.0) -> None:
        """Click the button named `name` once it is visible and enabled."""
        self.button(name).click(timeout=timeout * 1000)

    def cell(self, index: int) -> Any:
        """Cell number `index` (0-based) of this notebook in the page, as a Playwright locator."""
        return self.page.locator(".jp-NotebookPanel:visible .jp-Notebook .jp-Cell").nth(index)

    def screenshot(self, path: Path) -> Path:
        self.page.screenshot(path=str(path), full_page=True)
        return Path(path)


def _strip_ansi(text: str) -> str:
    import re

    return re.sub(r"\x1b\[[0-9;]*m", "", text)


def open_notebook(page: Page, server: JupyterServer, notebook: str, *, timeout: float = 90.0) -> LabNotebook:
    """Open `notebook` (a path relative to the server root) in JupyterLab and wait for its idle kernel."""
    began = time.monotonic()
    page.goto(server.lab_url(notebook), timeout=timeout * 1000)
    page.wait_for_function(
        f"(path) => window.jupyterapp && ({_FIND_PANEL})(path) !== null", arg=notebook, timeout=timeout * 1000
    )
    lab = LabNotebook(page=page, server=server, path=notebook)
    lab.wait_idle(timeout)
    lab.opened_s = time.monotonic() - began
    return lab
