"""Puts config/ (the default policy and the examples) into the package as veil/config/.

config/ at the top of the checkout stays the one place people read, edit and mount
(README, deploy/, the tests all name it); a wheel only carries files inside its
packages, so the build copies it in. No symlink: wheels do not keep them. Everything
else about the build is in pyproject.toml.
"""

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

CONFIG = Path(__file__).resolve().parent / "config"


class BuildPyWithConfig(build_py):
    def run(self):
        super().run()
        if self.editable_mode:
            return  # an editable install reads the checkout's config/ itself (veil.policy.model)
        shutil.copytree(CONFIG, Path(self.build_lib) / "veil" / "config", dirs_exist_ok=True,
                        ignore=shutil.ignore_patterns("*.md", ".*"))  # fmt: skip


setup(cmdclass={"build_py": BuildPyWithConfig})
