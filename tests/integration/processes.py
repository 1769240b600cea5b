"""Stopping a child process by its PID: asked to stop, given a grace period, then killed.
Shared by tests/integration, tests/soak (through conftest.py) and bench/; no pytest here."""
import signal
import subprocess


def wait_or_kill(proc, grace_seconds):
    """Waits up to `grace_seconds` for `proc` (a Popen already asked to stop) to exit, then
    SIGKILLs it by its PID and waits for that. Returns its exit status."""
    try:
        return proc.wait(timeout=grace_seconds)
    except subprocess.TimeoutExpired:
        proc.kill()
        return proc.wait()


def stop_process(proc, grace_seconds):
    """Stops `proc` (a Popen): SIGTERM, then SIGKILL if it is still running `grace_seconds`
    later. Returns its exit status (negative: the signal that ended it); a process that had
    already exited is only reaped."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    return wait_or_kill(proc, grace_seconds)
