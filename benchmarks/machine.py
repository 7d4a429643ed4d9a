"""What a benchmark's figures were measured on: the CPU's model name and the commit of the tree."""

import platform
import subprocess
from pathlib import Path


def cpu_model():
    """The CPU's model name as lscpu shows it ("AMD EPYC"); the platform's word without lscpu."""
    try:
        listed = subprocess.run(["lscpu"], capture_output=True, text=True).stdout.splitlines()
    except OSError:
        listed = []
    found = next((line.split(":", 1)[1].strip() for line in listed if line.startswith("Model name")), None)
    return found or platform.processor() or platform.machine()


def commit():
    """The checked-out commit (with "+changes" when tracked files differ from it), or None outside git."""
    here = Path(__file__).parent
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=here,
                              check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], capture_output=True,
                               text=True, cwd=here).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None
    return head + ("+changes" if dirty else "")
