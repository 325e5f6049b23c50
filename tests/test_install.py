"""
Installing the project as contributors do: C{pip install -e .} in a fresh
virtual environment, then C{twistd mdns --help} from another directory.

setuptools' default editable install maps packages through an import hook,
which Twisted's plugin scan (directories named C{twisted/plugins} on
C{sys.path}) cannot see; setup.cfg's C{package_dir} makes it a C{.pth}
entry instead.  This test fails if that ever regresses.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile

from twisted.trial import unittest

from tests.peers import REPO_ROOT

TWISTD = "import sys; from twisted.scripts.twistd import run; sys.argv[0] = 'twistd'; run()"


def _without_us(site_dirs: set[str], into: str) -> str:
    """
    A mirror of C{site_dirs} (symbolic links, one per entry) that leaves out
    any installed copy of this project: C{twisted_mdns} itself, its
    distribution metadata and its C{twisted/plugins} module.  CI installs the
    project into the environment whose dependencies the scratch venv
    borrows; borrowing that copy too would make the plugin known before the
    editable install, and the test could not fail.
    """
    os.makedirs(into)
    for site in sorted(site_dirs):
        if not os.path.isdir(site):
            continue
        for entry in os.listdir(site):
            target = os.path.join(into, entry)
            source = os.path.join(site, entry)
            lowered = entry.lower().replace("-", "_")
            if lowered.startswith(("twisted_mdns", "__editable__.twisted_mdns")) or os.path.lexists(target):
                continue
            if entry == "twisted" and os.path.isdir(os.path.join(source, "plugins")):
                os.makedirs(target)
                for sub in os.listdir(source):
                    if sub == "plugins":
                        plugins = os.path.join(target, "plugins")
                        os.makedirs(plugins)
                        for plugin in os.listdir(os.path.join(source, "plugins")):
                            if not plugin.startswith("twisted_mdns"):
                                os.symlink(os.path.join(source, "plugins", plugin), os.path.join(plugins, plugin))
                    else:
                        os.symlink(os.path.join(source, sub), os.path.join(target, sub))
                continue
            os.symlink(source, target)
    return into


def _scratch_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    return env


class EditableInstallTests(unittest.TestCase):
    timeout = 120

    def test_twistd_finds_plugin_after_editable_install(self) -> None:
        """
        The scratch venv borrows this interpreter's dependencies through a
        C{.pth} file (fast, offline for the dependencies); only the project
        itself is installed, in editable mode, with pip's normal build
        isolation.  C{twistd mdns --help} runs in an unrelated directory so
        that the checkout is not on C{sys.path} by accident.
        """
        work = tempfile.mkdtemp(prefix="twisted-mdns-editable-")
        self.addCleanup(shutil.rmtree, work, True)
        venv = os.path.join(work, "venv")
        env = _scratch_env()
        subprocess.run([sys.executable, "-m", "venv", venv], check=True, env=env, timeout=60)
        python = os.path.join(venv, "bin", "python")
        site = subprocess.run(
            [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            check=True, env=env, capture_output=True, text=True,
        ).stdout.strip()
        ours = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
        borrowed = _without_us(ours, os.path.join(work, "borrowed"))
        with open(os.path.join(site, "zz_borrowed_dependencies.pth"), "w") as f:
            f.write(borrowed + "\n")

        # Before the install the plugin is unknown (the test can fail).
        before = subprocess.run(
            [python, "-c", TWISTD, "mdns", "--help"], cwd=work, env=env,
            capture_output=True, text=True, timeout=60,
        )
        self.assertNotIn("--services-dir", before.stdout)

        install = subprocess.run(
            [python, "-m", "pip", "install", "-q", "--no-deps", "-e", str(REPO_ROOT)],
            cwd=work, env=env, capture_output=True, text=True, timeout=90,
        )
        self.assertEqual(install.returncode, 0, install.stdout + install.stderr)

        after = subprocess.run(
            [python, "-c", TWISTD, "mdns", "--help"], cwd=work, env=env,
            capture_output=True, text=True, timeout=60,
        )
        self.assertEqual(after.returncode, 0, after.stderr)
        self.assertIn("Usage: twistd [options] mdns [options]", after.stdout)
        self.assertIn("--services-dir", after.stdout)
        # The package itself resolves to the checkout, not to a copy.
        where = subprocess.run(
            [python, "-c", "import twisted_mdns; print(twisted_mdns.__file__)"],
            cwd=work, env=env, capture_output=True, text=True, timeout=60,
        ).stdout.strip()
        self.assertEqual(os.path.dirname(where), str(REPO_ROOT / "twisted_mdns"))
