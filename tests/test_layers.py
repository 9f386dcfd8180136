"""The tree tells the architecture, and `lint-imports` holds it to that: the layer contracts
in pyproject.toml ([tool.importlinter]) — cli > proxy > policy | audit > clean, mitmproxy
only in proxy and cli, no import cycles among sibling modules."""

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def lint_imports(root: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache", "--config", str(root / "pyproject.toml")],
        cwd=root, env={"PYTHONPATH": str(root / "addons"), "PATH": "/usr/bin:/bin"},
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def test_the_layer_contracts_hold():
    result = lint_imports(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


def test_a_pure_module_importing_the_proxy_breaks_the_contracts(tmp_path):
    """The check above can fail: the same contracts on a copy whose cleaner reaches up into
    the proxy, and whose audit package reaches sideways into the policy."""
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    shutil.copytree(ROOT / "addons", tmp_path / "addons", ignore=shutil.ignore_patterns("__pycache__"))
    core = tmp_path / "addons" / "veil" / "clean" / "core.py"
    core.write_text(core.read_text() + "\nfrom ..proxy import metrics  # noqa\n")
    events = tmp_path / "addons" / "veil" / "audit" / "events.py"
    events.write_text(events.read_text() + "\nfrom ..policy import model  # noqa\n")
    result = lint_imports(tmp_path)
    assert result.returncode != 0
    assert "veil.clean.core -> veil.proxy.metrics" in result.stdout
    assert "veil.audit.events -> veil.policy.model" in result.stdout


def test_every_relative_import_names_a_module_that_exists():
    """grimp skips imports it cannot resolve, so a stale `from .faces import …` inside a
    function would pass the contracts and fail only at run time, in a worker process."""
    import ast
    import importlib.util

    package_root = ROOT / "addons"
    missing = []
    for path in sorted((package_root / "veil").rglob("*.py")):
        module = ".".join(path.relative_to(package_root).with_suffix("").parts)
        package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level:
                base = importlib.util.resolve_name("." * node.level + (node.module or ""), package.removesuffix(".__init__"))
                candidates = [base] + [f"{base}.{alias.name}" for alias in node.names]
                if not any(importlib.util.find_spec(name) for name in candidates if _parent_exists(name)):
                    missing.append(f"{path.relative_to(ROOT)}:{node.lineno}: {base}")
    assert missing == []


def _parent_exists(name: str) -> bool:
    import importlib.util

    parent = name.rpartition(".")[0]
    try:
        return not parent or importlib.util.find_spec(parent) is not None
    except ModuleNotFoundError:
        return False
