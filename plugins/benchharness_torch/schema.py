"""Describe a TorchScript archive (``torch.jit.save``) without importing torch.

The archive is a zip with one top folder (the file's stem, or ``archive``) holding:

* ``data.pkl``: the pickled top-level module; its first global names its class,
  e.g. ``__torch__.bh_models.TokenModel`` (``__torch__.M`` for a class defined in
  ``__main__``, ``__torch__.torch.nn.modules.container.___torch_mangle_7.Sequential``
  for a traced container);
* ``code/__torch__/...``: the TorchScript source of every class, one file per
  module path (``code/__torch__.py`` for ``__torch__`` itself, ``code/__torch__/a/b.py``
  for ``__torch__.a.b``), in Python syntax, where ``forward`` reads e.g.::

      def forward(self: __torch__.M,
        ids: Tensor,
        scale: float=1.) -> Tensor:

The class is read from ``data.pkl``'s opcodes (nothing is unpickled) and its
``forward`` from the code file with ``ast``.
"""

from __future__ import annotations

import ast
import pickletools
import re
import textwrap
import zipfile
from pathlib import Path, PurePosixPath
from typing import Any

from benchharness.errors import BenchError
from benchharness.signature import ModelSignature, TensorSpec

#: The module prefix TorchScript gives every class it compiles.
TORCH_PREFIX = "__torch__"

_STRING_OPS = frozenset({"SHORT_BINUNICODE", "BINUNICODE", "BINUNICODE8", "UNICODE", "SHORT_BINSTRING", "BINSTRING"})
_PUT_OPS = frozenset({"PUT", "BINPUT", "LONG_BINPUT"})
_GET_OPS = frozenset({"GET", "BINGET", "LONG_BINGET"})
#: How many opcodes of data.pkl to read at most while looking for the first global.
_MAX_OPS = 10_000


def describe_torchscript(path: Path) -> ModelSignature:
    """Read ``path``'s top-level class and its ``forward`` signature; ``BenchError`` when it cannot."""
    try:
        with zipfile.ZipFile(path) as archive:
            root = _archive_root(archive)
            module, name = _top_level_class(archive.read(root + "data.pkl"))
            if module.split(".")[0] != TORCH_PREFIX:
                raise _NotTorchScript(f"data.pkl holds a {module}.{name}, not a TorchScript module")
            class_name = f"{module}.{name}"
            code_path = _code_path(root, module)
            try:
                source = archive.read(code_path).decode("utf-8")
            except KeyError:
                raise _NoForward(class_name, f"the archive has no {code_path}") from None
    except _NotTorchScript as exc:
        raise BenchError(f"{path}: not a TorchScript archive (torch.jit.save): {exc}") from None
    except _NoForward as exc:
        raise BenchError(f"{path}: cannot read the forward signature of {exc.class_name}: {exc.reason}") from None
    except zipfile.BadZipFile:
        raise BenchError(f"{path}: not a TorchScript archive (torch.jit.save): not a zip file") from None
    except OSError as exc:
        raise BenchError(f"{path}: cannot read: {exc.strerror or exc}") from None

    try:
        forward, forward_source = _find_forward(source, name)
    except _NoForward as exc:
        raise BenchError(f"{path}: cannot read the forward signature of {class_name}: {exc.reason}") from None
    return _signature(path, forward, forward_source)


class _NotTorchScript(Exception):
    """The file is a zip, but not one ``torch.jit.save`` wrote."""


class _NoForward(Exception):
    """The top-level class or its ``forward`` cannot be found or read."""

    def __init__(self, class_name: str, reason: str) -> None:
        super().__init__(reason)
        self.class_name = class_name
        self.reason = reason


def _archive_root(archive: zipfile.ZipFile) -> str:
    """The archive's top folder, with its trailing ``/``: the one that holds ``data.pkl``."""
    for entry in archive.namelist():
        parts = entry.split("/")
        if len(parts) == 2 and parts[1] == "data.pkl":
            return parts[0] + "/"
    raise _NotTorchScript("no <name>/data.pkl in the zip")


def _top_level_class(data: bytes) -> tuple[str, str]:
    """Module and class name of the first global in a pickle, read from its opcodes (nothing is unpickled)."""
    strings: list[str] = []  # the string operands seen, for STACK_GLOBAL (protocol 4)
    memo: dict[Any, str] = {}
    try:
        for count, (opcode, arg, _pos) in enumerate(pickletools.genops(data)):
            op = opcode.name
            if op == "GLOBAL":
                module, _, name = str(arg).partition(" ")
                return module, name
            if op == "STACK_GLOBAL":
                if len(strings) < 2:
                    break
                return strings[-2], strings[-1]
            if op in _STRING_OPS:
                strings.append(arg if isinstance(arg, str) else arg.decode("latin-1"))
            elif op == "MEMOIZE" and strings:
                memo[len(memo)] = strings[-1]
            elif op in _PUT_OPS and strings:
                memo[arg] = strings[-1]
            elif op in _GET_OPS and arg in memo:
                strings.append(memo[arg])
            if count >= _MAX_OPS:
                break
    except (ValueError, EOFError) as exc:
        raise _NotTorchScript(f"data.pkl is not a pickle ({exc})") from None
    raise _NotTorchScript("data.pkl names no class")


def _code_path(root: str, module: str) -> str:
    """The archive entry holding ``module``'s code: ``code/__torch__.py``, ``code/__torch__/a/b.py``, ..."""
    return root + "code/" + str(PurePosixPath(*module.split("."))) + ".py"


def _find_forward(source: str, class_name: str) -> tuple[ast.FunctionDef, str]:
    """The ``forward`` of the top-level class ``class_name`` in a code file, and the source it was parsed from.

    The whole file is parsed when it is valid Python; when it is not, only the
    ``forward`` header is cut out of the class's text and parsed.
    """
    try:
        tree = ast.parse(source)
    except SyntaxError:
        tree = None
    if tree is None:
        header = _forward_header(source, class_name)
        try:
            forward = _first_forward(ast.parse(header + "\n    pass\n").body)
        except SyntaxError as exc:
            raise _NoForward(class_name, f"its forward does not parse ({exc.msg})") from None
        if forward is None or not (forward.args.posonlyargs or forward.args.args):
            raise _NoForward(class_name, "its forward does not parse")
        return forward, header
    for node in tree.body:
        if isinstance(node, ast.ClassDef) and node.name == class_name:
            forward = _first_forward(node.body)
            if forward is None:
                raise _NoForward(class_name, f"class {class_name} has no forward method")
            if not (forward.args.posonlyargs or forward.args.args):
                raise _NoForward(class_name, "its forward takes no self argument")
            return forward, source
    raise _NoForward(class_name, f"no class {class_name} in its code file")


def _first_forward(body: list[ast.stmt]) -> Any:
    """The first ``def forward`` in a statement list, or ``None``."""
    for node in body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name == "forward":
            return node
    return None


def _forward_header(source: str, class_name: str) -> str:
    """The text of ``def forward(...) -> T:`` inside ``class class_name``, cut out by lines (a fallback)."""
    lines = source.splitlines()
    start = next((i for i, line in enumerate(lines) if re.match(rf"class {re.escape(class_name)}\b", line)), None)
    if start is None:
        raise _NoForward(class_name, f"no class {class_name} in its code file")
    for i in range(start + 1, len(lines)):
        line = lines[i]
        if line and not line[0].isspace():
            break  # the class ended
        if line.lstrip().startswith("def forward("):
            header: list[str] = []
            for part in lines[i:]:
                header.append(part)
                if part.rstrip().endswith(":") and _balanced("\n".join(header)):
                    return textwrap.dedent("\n".join(header))
            break
    raise _NoForward(class_name, f"class {class_name} has no readable forward method")


def _balanced(text: str) -> bool:
    """Whether brackets outside string literals are balanced (a rough check for the fallback)."""
    depth = 0
    for char in re.sub(r"'[^']*'|\"[^\"]*\"", "", text):
        depth += char in "([{"
        depth -= char in ")]}"
    return depth == 0


def _signature(path: Path, forward: ast.FunctionDef, source: str) -> ModelSignature:
    """Inputs and details from the parsed ``forward``."""

    def text(node: ast.AST | None) -> str | None:
        segment = ast.get_source_segment(source, node) if node is not None else None
        return " ".join(segment.split()) if segment is not None else None

    params = forward.args.posonlyargs + forward.args.args
    first_default = len(params) - len(forward.args.defaults)
    defaults: dict[str, ast.expr] = {arg.arg: d for arg, d in zip(params[first_default:], forward.args.defaults)}
    for arg, default in zip(forward.args.kwonlyargs, forward.args.kw_defaults):
        if default is not None:
            defaults[arg.arg] = default
    arguments = params[1:] + list(forward.args.kwonlyargs)  # the first one is the module (``self``)

    types: dict[str, str] = {}
    shown = ["self"]
    for arg in arguments:
        annotation = text(arg.annotation)
        if annotation is not None:
            types[arg.arg] = annotation
        item = arg.arg + (f": {annotation}" if annotation is not None else "")
        if arg.arg in defaults:
            item += f" = {text(defaults[arg.arg])}"
        shown.append(item)
    returns = text(forward.returns)
    line = f"def forward({', '.join(shown)})" + (f" -> {returns}" if returns else "")

    return ModelSignature(
        format="torchscript",
        inputs=[TensorSpec(name=arg.arg) for arg in arguments],
        outputs=[],
        optional_inputs=[arg.arg for arg in arguments if arg.arg in defaults],
        parameters=None,
        details={"file_bytes": path.stat().st_size, "forward": line, "argument_types": types},
    )
