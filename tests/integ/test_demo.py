"""make demo's walkthrough, pasted into a shell, does what it says."""
import os
import re
import signal
import subprocess
import time

from conftest import BUILD, REPO


def test_demo_walkthrough():
    demo = subprocess.Popen([os.path.join(REPO, "scripts", "demo"), BUILD],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, start_new_session=True)
    try:
        lines, started = [], False
        deadline = time.time() + 60
        while time.time() < deadline:
            line = demo.stdout.readline()
            if not line:
                break
            if line.startswith("Paste in another shell:"):
                started = True
                continue
            if line.startswith("# (end of walkthrough)"):
                break
            if started:
                lines.append(line)
        assert started, "no walkthrough printed"
        script = "".join(lines)
        out = subprocess.run(["bash", "-c", script], capture_output=True,
                             text=True, timeout=60)
        text = out.stdout
        statuses = [int(m) for m in re.findall(r"HTTP/1\.1 (\d{3}) ", text,
                                                re.M)]
        # delete refused, logout, old refresh refused, dave without role
        assert statuses == [403, 204, 401, 403], (statuses, text, out.stderr)
        assert '"roles":["analyst"]' in text
        assert '"subject"' in text or '"sender"' in text  # the email list
        assert text.count('"access_token"') == 3  # bob, refresh, frank
        assert '"roles":["admin"]' in text  # frank through it-ops
    finally:
        os.killpg(demo.pid, signal.SIGINT)
        assert demo.wait(30) is not None
    # Everything it started is gone.
    left = subprocess.run(["pgrep", "-f", "emailauth-demo-"],
                          capture_output=True, text=True).stdout
    assert left.strip() == ""
