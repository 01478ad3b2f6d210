"""The wheel on its own: a user's test, as the README writes it, passes with the plugin the wheel installs,
and the bundled eval cases run from it.

The wheel is built from this checkout (hatchling, no build isolation, so no network) and installed with
--no-deps into a fresh venv. Its dependencies come from this venv, through a folder of links that leaves
out this checkout's own editable `subagents`, so the package, its entry point and its data files can only
come from the wheel.
"""

from __future__ import annotations

import subprocess
import sys
import sysconfig
from pathlib import Path

from tests.helpers import child_env
from tests.test_readme import readme_blocks

REPO = Path(__file__).resolve().parents[2]


def run(*command: str | Path, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [str(c) for c in command], cwd=cwd, env=child_env(), capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, f"{command} failed:\n{result.stdout}\n{result.stderr}"
    return result


def dependencies_without_subagents(farm: Path) -> Path:
    """A folder of links to everything this venv has installed, except this checkout's `subagents`."""
    farm.mkdir()
    for entry in Path(sysconfig.get_paths()["purelib"]).iterdir():
        ours = entry.name.startswith(("subagents", "_editable_impl_subagents", "__editable__"))
        if not ours and entry.suffix != ".pth":
            (farm / entry.name).symlink_to(entry)
    return farm


def fresh_venv(where: Path, farm: Path) -> Path:
    run(sys.executable, "-m", "venv", "--without-pip", where)
    python = where / "bin" / "python"
    site = run(python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])").stdout.strip()
    (Path(site) / "dependencies.pth").write_text(f"{farm}\n", encoding="utf-8")
    return python


def test_a_users_test_passes_with_the_plugin_from_the_wheel(tmp_path: Path) -> None:
    wheels = tmp_path / "wheels"
    run(
        sys.executable,
        "-m",
        "pip",
        "wheel",
        "-q",
        "--no-deps",
        "--no-build-isolation",
        "--no-index",
        "-w",
        wheels,
        REPO,
    )
    [wheel] = wheels.glob("subagents-*.whl")
    python = fresh_venv(tmp_path / "venv", dependencies_without_subagents(tmp_path / "deps"))
    run(sys.executable, "-m", "pip", "--python", python, "install", "-q", "--no-deps", "--no-index", wheel)

    probe = (
        "import importlib.metadata as m, subagents.testing.plugin as p\n"
        "from subagents.definitions.catalog import bundled_agents_dir\n"
        "print(p.__file__)\n"
        "print(sorted(f.name for f in bundled_agents_dir().glob('*.md')))\n"
        "print([e.value for e in m.entry_points(group='pytest11') if e.name == 'subagents'])\n"
    )
    plugin, bundled, entry = run(python, "-c", probe).stdout.splitlines()
    assert Path(plugin).is_relative_to(tmp_path / "venv"), plugin  # the wheel's copy, not this checkout's
    assert bundled == str(["debate-judge.md", "router.md", "security-reviewer.md", "test-writer.md"])
    assert entry == "['subagents.testing.plugin']"

    # The README's agent and the README's test, in a project of the user's own.
    project = tmp_path / "project"
    agent, test = ([b for lang, b in readme_blocks() if lang == kind][0] for kind in ("markdown", "python"))
    (project / ".claude" / "agents").mkdir(parents=True)
    (project / ".claude" / "agents" / "api-reviewer.md").write_text(agent, encoding="utf-8")
    (project / "tests").mkdir()
    (project / "tests" / "test_api_reviewer.py").write_text(test, encoding="utf-8")
    result = run(python, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests", cwd=project)
    assert "1 passed" in result.stdout, result.stdout
    # The bundled eval cases and their fixture folder came with it.
    evals = run(
        python, "-m", "subagents", "eval", "security-reviewer", "--model", "fake", "-q", "--no-store", cwd=project
    )
    assert "5 of 5 cases passed" in evals.stdout, evals.stdout
