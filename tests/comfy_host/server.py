"""Start a real ComfyUI server with this pack installed, for tests (``tests/test_comfyui_host.py``).

The server runs as a subprocess bound to 127.0.0.1 on a free port, from the checkout in
``COMFYUI_DIR`` with the Python in ``COMFYUI_PYTHON`` (default: this interpreter). Everything it
writes goes to a temporary folder: ``extra_model_paths.yaml`` points ``custom_nodes:`` at a folder
holding a symlink to this repository and every model folder at ``<tmp>/models/<name>``; input, output,
temp and user folders live there too, and the database is in memory.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.dirname(os.path.dirname(HERE))
PACK_LINK_NAME = "comfyui-dynascene"
MODEL_FOLDERS = ("checkpoints", "vae", "clip_vision", "animatediff_models", "dynascene", "rvm")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# One torch thread, as in each test worker (conftest): under pytest-xdist a worker's server runs beside the other
# worker and its server, and oversubscribed OpenMP threads stall CPU kernels by tens of times, unevenly.
SERVER_THREADS = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


class ComfyServer:
    """``with ComfyServer(comfy_dir, work_dir) as server:`` — a running host; killed on exit."""

    def __init__(self, comfy_dir: str, work_dir: str, python: str | None = None, start_timeout: float = 300.0):
        self.comfy_dir = os.path.abspath(comfy_dir)
        self.work_dir = work_dir
        self.python = python or sys.executable
        self.start_timeout = start_timeout
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = os.path.join(work_dir, "server.log")
        self.dirs = {name: os.path.join(work_dir, name) for name in ("input", "output", "temp", "user", "models")}
        # ComfyUI uses <--temp-directory>/temp; dirs["temp"] is where temp files really go
        self._temp_parent = work_dir
        self.process: subprocess.Popen | None = None

    # -- lifecycle -----------------------------------------------------------------------------
    def _write_config(self) -> str:
        custom_nodes = os.path.join(self.work_dir, "custom_nodes")
        os.makedirs(custom_nodes, exist_ok=True)
        os.symlink(REPO_ROOT, os.path.join(custom_nodes, PACK_LINK_NAME))
        for path in self.dirs.values():
            os.makedirs(path, exist_ok=True)
        for name in MODEL_FOLDERS:
            os.makedirs(os.path.join(self.dirs["models"], name), exist_ok=True)
        lines = ["dynascene_tests:", f"    base_path: {self.dirs['models']}", f"    custom_nodes: {custom_nodes}"]
        lines += [f"    {name}: {name}" for name in MODEL_FOLDERS]
        config = os.path.join(self.work_dir, "extra_model_paths.yaml")
        with open(config, "w", encoding="utf-8") as handle:
            handle.write("\n".join(lines) + "\n")
        return config

    def start(self) -> "ComfyServer":
        config = self._write_config()
        # a checkout may lack the (empty) custom_nodes folder that ComfyUI lists at start-up
        os.makedirs(os.path.join(self.comfy_dir, "custom_nodes"), exist_ok=True)
        command = [self.python, "main.py", "--cpu", "--listen", "127.0.0.1", "--port", str(self.port),
                   "--extra-model-paths-config", config, "--disable-auto-launch", "--disable-api-nodes",
                   "--database-url", "sqlite:///:memory:",
                   "--input-directory", self.dirs["input"], "--output-directory", self.dirs["output"],
                   "--temp-directory", self._temp_parent, "--user-directory", self.dirs["user"]]
        self._log_handle = open(self.log_path, "w", encoding="utf-8")
        self.process = subprocess.Popen(command, cwd=self.comfy_dir, stdout=self._log_handle,
                                        stderr=subprocess.STDOUT, env=dict(os.environ, **SERVER_THREADS))
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"ComfyUI exited with code {self.process.returncode} during start-up\n{self.log()}")
            try:
                self.get_json("/system_stats", timeout=2)
                return self
            except (urllib.error.URLError, ConnectionError, OSError):
                time.sleep(0.5)
        raise TimeoutError(f"ComfyUI did not answer within {self.start_timeout:.0f} s\n{self.log()}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=15)
        if getattr(self, "_log_handle", None) is not None:
            self._log_handle.close()

    def __enter__(self) -> "ComfyServer":
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc) -> None:
        self.stop()

    def log(self) -> str:
        if not os.path.exists(self.log_path):
            return ""
        with open(self.log_path, encoding="utf-8", errors="replace") as handle:
            return handle.read()

    # -- HTTP ----------------------------------------------------------------------------------
    def get_json(self, path: str, timeout: float = 30):
        with urllib.request.urlopen(self.url + path, timeout=timeout) as response:
            return json.loads(response.read())

    def post_prompt(self, prompt: dict, client_id: str | None = None) -> tuple[int, dict]:
        """``POST /prompt``; returns (HTTP status, JSON body) also for 4xx answers."""
        return self.post_json("/prompt", {"prompt": prompt, "client_id": client_id or uuid.uuid4().hex})

    def post_json(self, path: str, payload: dict) -> tuple[int, dict]:
        """``POST`` JSON to ``path``; returns (HTTP status, JSON body or {}) also for 4xx answers."""
        body = json.dumps(payload).encode()
        request = urllib.request.Request(self.url + path, data=body, headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status, json.loads(response.read() or b"{}")
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read() or b"{}")

    def wait_for_history(self, prompt_id: str, timeout: float = 120) -> dict:
        """Poll ``/history/<id>`` until the prompt finished (success or error); returns its entry."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"ComfyUI died while running prompt {prompt_id}\n{self.log()}")
            history = self.get_json(f"/history/{prompt_id}")
            entry = history.get(prompt_id)
            if entry:  # an entry appears once the prompt ended; its status says success or error
                return entry
            time.sleep(0.05)
        raise TimeoutError(f"prompt {prompt_id} did not finish within {timeout:.0f} s\n{self.log()}")

    def interrupt_at_progress(self, prompt: dict, node_id: str, timeout: float = 600) -> dict:
        """Queue ``prompt``, press Interrupt (``POST /interrupt``) at node ``node_id``'s second progress event
        and wait for the host's ``execution_interrupted`` message, over the frontend's websocket.

        Returns ``{"progress": <that event's data>, "seconds": <Interrupt request to interrupted message>,
        "unit_seconds": <first to second progress event: one unit of the node's work on this machine now>,
        "interrupted": <its data>}``; raises if the prompt ends in another way first.
        """
        import asyncio

        import aiohttp

        async def run() -> dict:
            client_id = uuid.uuid4().hex
            deadline = time.monotonic() + timeout
            async with aiohttp.ClientSession() as session:
                async with session.ws_connect(f"{self.url.replace('http', 'ws', 1)}/ws?clientId={client_id}") as ws:
                    status, body = await asyncio.to_thread(self.post_prompt, prompt, client_id)
                    if status != 200:
                        raise RuntimeError(f"prompt rejected ({status}): {body}")
                    first, progress, pressed = None, None, None
                    while time.monotonic() < deadline:
                        message = await ws.receive(timeout=max(0.1, deadline - time.monotonic()))
                        if message.type != aiohttp.WSMsgType.TEXT:
                            continue  # binary previews
                        event = json.loads(message.data)
                        kind, data = event["type"], event.get("data") or {}
                        if kind == "progress" and data.get("node") == node_id and first is None:
                            first = time.monotonic()
                        elif kind == "progress" and data.get("node") == node_id and progress is None:
                            progress, pressed = data, time.monotonic()
                            async with session.post(self.url + "/interrupt", json={}) as answer:
                                assert answer.status == 200
                        elif kind == "execution_interrupted":
                            if pressed is None:
                                raise RuntimeError(f"interrupted before node {node_id} reported progress: {data}")
                            return {"progress": progress, "seconds": time.monotonic() - pressed,
                                    "unit_seconds": pressed - first, "interrupted": data}
                        elif kind in ("execution_error", "execution_success"):
                            raise RuntimeError(f"prompt ended with {kind} before the interrupt: "
                                               f"{data.get('node_type')} {data.get('exception_message', '')}")
            raise TimeoutError(f"no execution_interrupted within {timeout:.0f} s\n{self.log()}")

        return asyncio.run(run())

