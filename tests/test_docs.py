"""The README and the documentation pages stay true to the repository they describe.

The README's first code block is what CI runs (``.ci/run``), its links lead to pages that exist,
and the benchmarks page names every benchmark script. ``mkdocs build --strict`` in CI checks the
links and references between the pages themselves.
"""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"
CI = REPO / ".ci" / "run"
BENCHMARKS_PAGE = REPO / "docs" / "benchmarks.md"
# imported by the scripts (and tests), not run alone
HELPERS = {"whole_process.py", "benchmark_options.py", "peer_queries.py"}


def first_code_block(markdown: str) -> list[str]:
    """The lines of the first fenced code block."""
    match = re.search(r"^```[^\n]*\n(.*?)^```", markdown, re.DOTALL | re.MULTILINE)
    assert match, "no code block"
    return match.group(1).splitlines()


def readme_commands() -> list[list[str]]:
    """Per line of the README's first code block, its commands (split on &&), comments dropped."""
    lines = [line.split("#", 1)[0].strip() for line in first_code_block(README.read_text())]
    return [[" ".join(part.split()) for part in line.split("&&")] for line in lines if line]


def ci_commands() -> list[str]:
    """.ci/run's command lines, whitespace normalised and ``--quiet`` (CI's terse pip) dropped."""
    commands = []
    for line in CI.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            commands.append(" ".join(word for word in line.split() if word != "--quiet"))
    return commands


def test_readme_first_code_block_is_what_ci_runs() -> None:
    readme = readme_commands()
    assert readme == [
        ["pip install -e .", "robustkit audit"],
        ["pip install -e '.[test]'", "pytest -n 2"],
    ]
    ci = ci_commands()
    positions = []
    for command in (part for line in readme for part in line):
        assert command in ci, f"the README's {command!r} is not in .ci/run"
        positions.append(ci.index(command))
    assert positions == sorted(positions), "CI runs the README's commands in another order"


def test_readme_data_note_names_the_folder_ci_uses() -> None:
    block = "\n".join(first_code_block(README.read_text()))
    note = re.search(r"ROBUSTKIT_DATA=(\S+?)\s", block)
    assert note, "the README's test command no longer says where the real data is"
    ci_default = re.search(r"ROBUSTKIT_DATA:-\$\(cd \.\. && pwd\)/(\S+?)\}", CI.read_text())
    assert ci_default, ".ci/run no longer defaults ROBUSTKIT_DATA next to the checkout"
    assert note.group(1) == f"../{ci_default.group(1)}"


def test_readme_links_lead_to_files_that_exist() -> None:
    targets = re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", README.read_text())
    local = [target for target in targets if "://" not in target]
    assert any(target.startswith("docs/") for target in local), "the README links no docs page"
    missing = [target for target in local if not (REPO / target).exists()]
    assert not missing, f"README links to missing files: {missing}"


def test_benchmarks_page_names_every_benchmark_script() -> None:
    page = BENCHMARKS_PAGE.read_text()
    scripts = sorted(path.name for path in (REPO / "benchmarks").glob("*.py"))
    assert len(scripts) > len(HELPERS)
    unnamed = [name for name in scripts if f"benchmarks/{name}" not in page]
    assert not unnamed, f"docs/benchmarks.md does not describe {unnamed}"
    commands = set(re.findall(r"python\s+benchmarks/(\w+\.py)", page))
    silent = [name for name in scripts if name not in HELPERS and name not in commands]
    assert not silent, f"docs/benchmarks.md gives no command for {silent}"
