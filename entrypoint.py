"""Container entry point: the GitHub Action, or the CLI under `docker run`.

With command-line arguments (``docker run IMAGE --model-path model.skops``) this is the CLI.
Without arguments but with ``INPUT_*`` variables (the runner sets them for an action) it is the
action. Either way relative paths are relative to the workspace (GITHUB_WORKSPACE, or
/github/workspace where the repository is mounted); the action refuses paths outside it.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

WORKSPACE_MOUNT = Path("/github/workspace")


def main(argv: list[str]) -> int:
    workspace = Path(os.environ.get("GITHUB_WORKSPACE") or (WORKSPACE_MOUNT if WORKSPACE_MOUNT.is_dir() else "."))
    if not argv and any(name.startswith("INPUT_") for name in os.environ):
        from converter.github.action import run
        from converter.github.commands import one_stream

        one_stream()  # one ordered stream for the runner to read: see converter/github/commands.py
        return run(workspace)
    # The image has no WORKDIR (GitHub's rule for docker actions), so `docker run` starts in /.
    os.chdir(workspace)
    from converter.cli import main as cli

    return cli(argv, own_process=True)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
