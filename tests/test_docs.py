"""The README is the front door and docs/ is the rest: the site builds with `mkdocs build
--strict` (a broken link or anchor, or a policy setting without a description, fails it),
and the README stays short, starts with the two commands CI and users run, and links only to
files that exist."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from markdown.extensions.toc import slugify

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
MKDOCS = Path(sys.executable).with_name("mkdocs")
README_MAX_LINES = 250
# CI and users run these first; the README must open with them, exactly.
README_OPENING = [
    "# Veil",
    "",
    "```bash",
    "scripts/run     # sets up .venv and starts the Veil proxy on 127.0.0.1:8080 with config/policy.yaml",
    "scripts/test    # sets up .venv with the test extras and runs the whole test suite",
    "```",
]
# [text](target) and ![alt](target), the target up to a space (a title) or the closing bracket.
MARKDOWN_LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)[^)]*\)")


def build_site(root: Path, site: Path) -> subprocess.CompletedProcess:
    # PYTHONPATH: the hook renders the policy reference from this checkout's code.
    env = {**os.environ, "PYTHONPATH": str(root / "addons"), "NO_MKDOCS_2_WARNING": "1"}
    return subprocess.run(
        [str(MKDOCS), "build", "--strict", "--config-file", str(root / "mkdocs.yml"), "--site-dir", str(site)],
        cwd=root, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip


def relative_links(markdown: str) -> list[str]:
    """Link targets outside code blocks and spans that are not URLs or in-page anchors."""
    prose = re.sub(r"```.*?```", "", markdown, flags=re.DOTALL)
    prose = re.sub(r"`[^`\n]*`", "", prose)
    targets = MARKDOWN_LINK.findall(prose)
    return [target for target in targets if not re.match(r"[a-z][a-z0-9+.-]*:", target) and not target.startswith("#")]


def heading_anchors(markdown: str) -> set[str]:
    """The anchors mkdocs gives a page's headings (the toc extension's slugify)."""
    prose = re.sub(r"```.*?```", "", markdown, flags=re.DOTALL)
    headings = re.findall(r"^#{1,6} (.+)$", prose, flags=re.MULTILINE)
    return {slugify(re.sub(r"[`*]", "", heading), "-") for heading in headings}


@pytest.mark.skipif(not MKDOCS.exists(), reason="mkdocs is not installed (scripts/setup --test installs mkdocs-material)")
def test_the_site_builds_strictly(tmp_path):
    result = build_site(ROOT, tmp_path / "site")
    assert result.returncode == 0, result.stdout + result.stderr
    reference = (tmp_path / "site" / "policy-reference" / "index.html").read_text()
    assert "detection.tile_px" in reference and "policy-reference: rendered" not in reference
    services = (tmp_path / "site" / "services" / "index.html").read_text()
    assert "bedrock-runtime.*.amazonaws.com" in services and "service-catalogue: rendered" not in services


@pytest.mark.skipif(not MKDOCS.exists(), reason="mkdocs is not installed (scripts/setup --test installs mkdocs-material)")
def test_a_broken_catalogue_fails_the_build(tmp_path):
    """The catalogue table is the catalogue's: a problem in config/services/ stops the build."""
    copy = tmp_path / "repo"
    (copy / "config").mkdir(parents=True)
    subprocess.run(["cp", "-r", str(ROOT / "docs"), str(ROOT / "mkdocs.yml"), str(ROOT / "addons"), str(copy)], check=True)
    subprocess.run(["cp", "-r", str(ROOT / "config" / "services"), str(copy / "config")], check=True)
    openai = copy / "config" / "services" / "openai.yaml"
    openai.write_text(openai.read_text().replace("flows: captured", "flows: caught", 1))
    result = build_site(copy, tmp_path / "site")
    assert result.returncode != 0
    assert "openai.yaml, line" in result.stdout + result.stderr and "'caught' is not allowed" in result.stdout + result.stderr


@pytest.mark.skipif(not MKDOCS.exists(), reason="mkdocs is not installed (scripts/setup --test installs mkdocs-material)")
def test_a_broken_link_fails_the_build(tmp_path):
    """The check above can fail: the same site with one link to a page that does not exist."""
    copy = tmp_path / "repo"
    copy.mkdir()
    subprocess.run(["cp", "-r", str(ROOT / "docs"), str(ROOT / "mkdocs.yml"), str(ROOT / "addons"), str(copy)], check=True)
    faces = copy / "docs" / "faces.md"
    faces.write_text(faces.read_text() + "\nSee [the missing page](no-such-page.md).\n")
    result = build_site(copy, tmp_path / "site")
    assert result.returncode != 0
    assert "no-such-page.md" in result.stdout + result.stderr


def test_readme_is_short():
    lines = README.read_text().splitlines()
    assert len(lines) <= README_MAX_LINES, f"README.md has {len(lines)} lines; move detail into docs/"


def test_readme_starts_with_the_two_commands():
    assert README.read_text().splitlines()[: len(README_OPENING)] == README_OPENING


def test_readme_links_point_at_files_that_exist():
    links = relative_links(README.read_text())
    assert links, "the README links into docs/"
    for link in links:
        path, _, anchor = link.partition("#")
        target = ROOT / path
        assert target.exists(), f"README.md links to {link}, which does not exist"
        if anchor:
            assert anchor in heading_anchors(target.read_text()), f"README.md links to {link}: no such heading"


def test_the_link_check_sees_missing_files_and_anchors():
    links = relative_links("[a](docs/none.md) `[b](c.md)` [d](https://e.org) [f](#g) ![h](docs/i.png \"t\")")
    assert links == ["docs/none.md", "docs/i.png"]
    assert heading_anchors("# Top\n```\n# not a heading\n```\n## Sizes: `preserve_length`\n") == {
        "top", "sizes-preserve_length",
    }  # fmt: skip
