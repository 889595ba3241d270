"""Builds the sqlite-cnn wheel: the Python code of sqlite_cnn/, the cnn.so that
the repository's CMake builds (target cnn only, Release), and _version.py with
the version of the top-level CMakeLists.txt, so the version is stated once.

The repository is the directory two levels up (pip builds a local directory in
place: pip install ./bindings/python), or SQLITE_CNN_SOURCE. SQLITE_CNN_SO
names a cnn.so built beforehand, which is shipped instead of building one.
CMAKE_BUILD_PARALLEL_LEVEL sets the build's jobs (default 2).

cnn.so is loaded by SQLite, not imported by Python, so the wheel fits every
Python 3 on its platform: py3-none-<platform>.
"""
import os
import re
import shutil
import subprocess

from setuptools import setup
from setuptools.command.build_py import build_py
from setuptools.dist import Distribution

try:
    from setuptools.command.bdist_wheel import bdist_wheel
except ImportError:  # setuptools before 70.1: the wheel package has it
    from wheel.bdist_wheel import bdist_wheel

HERE = os.path.dirname(os.path.realpath(__file__))
SOURCE = os.path.abspath(os.environ.get("SQLITE_CNN_SOURCE") or os.path.join(HERE, "..", ".."))


def fail(message):
    raise SystemExit(f"sqlite-cnn: {message}")


def project_version():
    path = os.path.join(SOURCE, "CMakeLists.txt")
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except OSError:
        fail(f"no sqlite-cnn repository at {SOURCE} ({path} is missing): install from a checkout "
             "(pip install ./bindings/python) or set SQLITE_CNN_SOURCE to one")
    m = re.search(r"project\(\s*sqlite-cnn\s+VERSION\s+([0-9]+(?:\.[0-9]+)*)", text)
    if not m:
        fail(f"{path} has no project(sqlite-cnn VERSION x.y.z)")
    return m.group(1)


def cmake_build(build_dir):
    """cnn.so from the repository's CMake, in build_dir (kept between builds)."""
    if shutil.which("cmake") is None:
        fail("building cnn.so needs cmake, a C compiler and the libraries of tools/deps.sh "
             "(Debian: sudo sh tools/deps.sh), or a prebuilt cnn.so named by SQLITE_CNN_SO")
    env = dict(os.environ)
    env.setdefault("CMAKE_BUILD_PARALLEL_LEVEL", "2")
    subprocess.check_call(["cmake", "-S", SOURCE, "-B", build_dir, "-DCMAKE_BUILD_TYPE=Release"],
                          env=env)
    subprocess.check_call(["cmake", "--build", build_dir, "--target", "cnn"], env=env)
    return os.path.join(build_dir, "cnn.so")


class BuildPy(build_py):
    """The package's Python files, then cnn.so and _version.py beside them."""

    def run(self):
        super().run()
        target = os.path.join(self.build_lib, "sqlite_cnn")
        so = os.environ.get("SQLITE_CNN_SO")
        if so:
            if not os.path.isfile(so):
                fail(f"SQLITE_CNN_SO names {so}, which is not a file")
        else:
            build_temp = self.get_finalized_command("build").build_temp
            so = cmake_build(os.path.abspath(os.path.join(build_temp, "cmake")))
        self.copy_file(so, os.path.join(target, "cnn.so"))
        with open(os.path.join(target, "_version.py"), "w", encoding="utf-8") as f:
            f.write(f'__version__ = "{VERSION}"\n')


class BinaryDistribution(Distribution):
    """A platform wheel: it carries a compiled library."""

    def has_ext_modules(self):
        return True


class BdistWheel(bdist_wheel):
    def get_tag(self):
        _, _, platform = super().get_tag()
        return "py3", "none", platform


VERSION = project_version()
setup(version=VERSION, distclass=BinaryDistribution,
      cmdclass={"build_py": BuildPy, "bdist_wheel": BdistWheel})
