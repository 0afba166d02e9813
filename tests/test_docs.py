"""Documentation stays true: every hook is documented, rendered into docs/plugins.md, and tested;
the README's example plugin works exactly as written."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from benchharness import docs

ROOT = Path(__file__).parents[1]
HOOKS = [name for name, _ in docs.hook_functions()]


def test_there_is_one_hook_per_plugin_kind():
    from benchharness.plugins import KINDS

    assert sorted(HOOKS) == sorted(f"benchharness_register_{kind}" for kind in KINDS)


@pytest.mark.parametrize("hook", HOOKS)
def test_hook_is_documented(hook):
    import benchharness.hookspecs as hookspecs

    doc = getattr(hookspecs, hook).__doc__ or ""
    for section in ("Args:", "When:", "Returns:", "Example::"):
        assert section in doc, f"{hook}'s docstring lacks {section!r}"
    assert f"def {hook}(register)" in doc, f"{hook}'s example does not implement it"


@pytest.mark.parametrize("hook", HOOKS)
def test_hook_is_exercised_by_a_test_plugin(hook):
    plugin_sources = "".join(p.read_text() for p in (ROOT / "tests" / "plugins").glob("*.py"))
    assert f"def {hook}(" in plugin_sources, f"no test plugin implements {hook}"


def test_rendered_reference_is_current():
    text = (ROOT / docs.DOC_PATH).read_text()
    assert docs.START in text and docs.END in text
    assert docs.updated(text) == text, "docs/plugins.md is out of date: run python -m benchharness.docs"
    for hook in HOOKS:
        assert f"### `{hook}(register)`" in text


def _code_block(text: str, after: str, lang: str) -> str:
    start = text.index(after)
    match = re.compile(rf"```{lang}\n(.*?)```", re.S).search(text, start)
    assert match, f"no {lang} block after {after!r}"
    return match.group(1)


def test_readme_example_plugin_works_as_written(tmp_path):
    readme = (ROOT / "README.md").read_text()
    (tmp_path / "my_plugin.py").write_text(_code_block(readme, "Save it as `my_plugin.py`", "python"))
    (tmp_path / "traced.yaml").write_text(_code_block(readme, "this suite as `traced.yaml`", "yaml"))
    command = _code_block(readme, "then, in the same folder", "bash").strip()
    assert command == "benchharness run traced.yaml -p my_plugin"
    exe = Path(sys.executable).with_name("benchharness")
    proc = subprocess.run(
        [str(exe), *command.split()[1:], "-q"], cwd=tmp_path, capture_output=True, text=True, timeout=240
    )
    assert proc.returncode == 0, proc.stderr
    rows = [line.split() for line in proc.stdout.splitlines()[2:] if not line.startswith("note:")]
    assert [row[1] for row in rows] == ["torch", "torch-traced"]
    assert all(row[2] == "ok" for row in rows)


def test_readme_commands_match_ci():
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text().strip().splitlines()
    assert "```bash\ntox\n```" in readme
    assert ci[-1] == "tox"
    assert 'pip install -e ".[all]" -c constraints.txt && benchharness run suites/mobile.yaml' in readme


def test_readme_suite_format_block_is_a_valid_suite_shape():
    import yaml

    from benchharness.suite import Suite

    readme = (ROOT / "README.md").read_text()
    block = _code_block(readme, "## The suite format", "yaml")
    suite = Suite.model_validate(yaml.safe_load(block))
    assert [m.source for m in suite.models] == ["zoo", "onnx", "python"]
    assert suite.models[1].dims == {"input.1": 16000, "state.1": 1}


def test_every_public_api_method_is_documented():
    from benchharness import api

    rendered = docs.render()
    assert "(undocumented)" not in rendered
    for name in api.__all__:
        assert f"`{name}" in rendered or f"`class {name}" in rendered, f"benchharness.api.{name} is not in the reference"
    # Signatures are rendered, not just names: the methods a plugin implements show their arguments.
    assert "- `load(artifact: ModelArtifact) -> None`" in rendered
    assert "- `describe(options: BaseModel, ctx: ModelContext) -> ModelSignature | None`" in rendered
