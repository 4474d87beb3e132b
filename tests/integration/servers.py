"""What the test servers (SeaweedFS, Label Studio) share: stopping their process group."""

import os
import signal
import subprocess


def stop_process_group(process: subprocess.Popen | None) -> None:
    """SIGTERM the group a server was started in (start_new_session=True), then SIGKILL."""
    if process is None or process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=15)
