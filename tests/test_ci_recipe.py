"""docs/ci.md's GitHub Actions workflow, parsed and run step by step against two commits of a toy repository.

Every ``run:`` step runs as GitHub would run it (``bash -e``, the workflow's and the step's environment,
``${{ ... }}`` expressions filled in for a pull request), in a clone of the toy repository, except the
install step: this environment already has benchharness.  ``gh`` is a fake that records the comment.
``ROUNDS`` is lowered from the workflow's 10 to 3 to keep the test short (the head is many times slower;
with 2, the t-test has one degree of freedom and can miss even that); everything else is as written.
"""

from __future__ import annotations

import os
import re
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml
from abrepo import git, make_repo

DOC = Path(__file__).resolve().parents[1] / "docs" / "ci.md"

FAKE_GH = """#!/bin/sh
# A fake GitHub CLI: records its arguments and the comment body; --edit-last fails (no earlier comment).
echo "$@" >> "$GH_LOG"
for arg in "$@"; do [ "$arg" = "--edit-last" ] && exit 1; done
while [ $# -gt 0 ]; do [ "$1" = "--body-file" ] && cat "$2" > "$GH_BODY"; shift; done
"""


def workflow() -> dict[str, Any]:
    """The first ```yaml block of docs/ci.md."""
    match = re.search(r"```yaml\n(.*?)```", DOC.read_text(), re.S)
    assert match, "docs/ci.md has no yaml block"
    return yaml.safe_load(match.group(1))


def expressions(text: str, context: dict[str, str]) -> str:
    """``${{ name }}`` replaced by ``context[name]``; an expression the test does not know fails it."""

    def value(match: re.Match[str]) -> str:
        name = match.group(1).strip()
        assert name in context, f"the workflow uses ${{{{ {name} }}}}, which this test does not provide"
        return context[name]

    return re.sub(r"\$\{\{(.*?)\}\}", value, text)


def test_the_workflow_is_valid_and_has_the_steps_the_doc_describes():
    flow = workflow()
    trigger = flow.get("on", flow.get(True))  # YAML 1.1 (PyYAML, as GitHub's own parser) reads a bare `on` as true
    assert "pull_request" in trigger
    steps = flow["jobs"]["ab"]["steps"]
    assert steps[0]["uses"].startswith("actions/checkout@") and steps[0]["with"]["fetch-depth"] == 0
    ab = next(s for s in steps if s.get("id") == "ab")
    assert "benchharness ab" in ab["run"] and "--format markdown" in ab["run"]
    comment = next(s for s in steps if "gh pr comment" in s.get("run", ""))
    assert "always()" in comment["if"]
    assert flow["permissions"]["pull-requests"] == "write"


def test_the_workflow_runs_locally_and_fails_on_a_slower_head(tmp_path: Path):
    repo, base, head = make_repo(tmp_path / "origin")
    checkout = tmp_path / "checkout"  # what actions/checkout leaves: a clone at the head, with all history
    subprocess.run(["git", "clone", "-q", str(repo), str(checkout)], check=True)
    git(checkout, "checkout", "-q", head)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "gh").write_text(FAKE_GH)
    (bin_dir / "gh").chmod((bin_dir / "gh").stat().st_mode | stat.S_IEXEC)
    flow = workflow()
    context = {
        "github.event.pull_request.base.sha": base,
        "github.event.pull_request.head.sha": head,
        "github.event.pull_request.number": "7",
        "github.token": "not-a-token",
    }
    env = {
        **os.environ,
        **{k: str(v) for k, v in flow.get("env", {}).items()},
        "ROUNDS": "3",
        "PATH": f"{bin_dir}{os.pathsep}{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "GH_LOG": str(tmp_path / "gh.log"),
        "GH_BODY": str(tmp_path / "comment.md"),
    }
    assert flow["env"]["ROUNDS"] == "10"
    outcomes: dict[str, int] = {}
    failed = False
    for step in flow["jobs"]["ab"]["steps"]:
        if "run" not in step or step.get("name", "").startswith("Install"):
            continue
        condition = step.get("if", "")
        if failed and "always()" not in condition:
            continue
        if "hashFiles('ab.md')" in condition and not (checkout / "ab.md").exists():
            continue
        step_env = {**env, **{k: expressions(str(v), context) for k, v in step.get("env", {}).items()}}
        done = subprocess.run(
            ["bash", "-e", "-c", expressions(step["run"], context)], cwd=checkout, env=step_env,
            capture_output=True, text=True, timeout=600,
        )  # fmt: skip
        outcomes[step["name"]] = done.returncode
        failed = failed or done.returncode != 0
        if step.get("id") == "ab":
            ab_stderr = done.stderr
    assert outcomes == {
        "Interleaved A/B of the base and the head": 1,  # the gate: the head is slower
        "Post the comparison on the pull request": 0,  # and the comment is posted all the same
    }, (outcomes, ab_stderr[-2000:])
    comment = (tmp_path / "comment.md").read_text()
    assert comment == (checkout / "ab.md").read_text()
    first = comment.splitlines()[0]
    assert first.startswith("**benchharness") and "regression" in first and "slower" in first
    calls = (tmp_path / "gh.log").read_text().splitlines()
    assert calls == ["pr comment 7 --body-file ab.md --edit-last", "pr comment 7 --body-file ab.md"]
    assert list((checkout / "ab-results").glob("ab-*/head.json"))
    # the recipe runs both sides of each round together on one core (SAME_CORE), as docs/ci.md recommends
    assert flow["env"]["SAME_CORE"] == "--same-core" and "[round 3/3] base and head together on core" in ab_stderr
    assert len(git(checkout, "worktree", "list").splitlines()) == 1  # the A/B's worktrees are gone
