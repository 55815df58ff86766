"""The arrows of DESIGN.md: who may import whom, and the live path without torch."""
import ast
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
# part -> the parts of ours it may import
ALLOWED = {
    "model": set(),
    "training": {"model"},
    "calibration": {"model", "training"},
    "realtime": {"model"},
}
# realtime may use only model's numpy-only modules
REALTIME_MODEL_MODULES = {"skeleton", "graph", "preprocess", "bundle", "openpose_json", "recording",
                          "atomic"}  # numpy-only


def _imports(path: Path) -> list[tuple[str, int]]:
    """Absolute names imported by a file, with relative imports resolved against its package."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    rel = path.relative_to(REPO).with_suffix("")
    package = ["sttr", *rel.parts[:-1]]
    names = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [(alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                mod = ".".join(base + ([node.module] if node.module else []))
                names += [(f"{mod}.{alias.name}" if not node.module else mod, node.lineno) for alias in node.names]
            elif node.module:
                names.append((node.module, node.lineno))
    return names


def _files(part: str):
    return sorted((REPO / part).rglob("*.py"))


@pytest.mark.parametrize("part", sorted(ALLOWED))
def test_parts_import_only_what_design_allows(part):
    bad = []
    for path in _files(part):
        for name, line in _imports(path):
            pieces = name.split(".")
            if pieces[0] in ALLOWED and pieces[0] != part:
                bad.append(f"{path.relative_to(REPO)}:{line} imports {name} (use sttr.{name})")
            if pieces[0] != "sttr" or len(pieces) < 2:
                continue
            other = pieces[1]
            if other == part or other not in ALLOWED:
                continue
            if other not in ALLOWED[part]:
                bad.append(f"{path.relative_to(REPO)}:{line} imports {name}")
            elif (part == "realtime" and other == "model" and len(pieces) > 2
                  and pieces[2] not in REALTIME_MODEL_MODULES):
                bad.append(f"{path.relative_to(REPO)}:{line} imports {name} (realtime may use only model's "
                           f"numpy-only modules {sorted(REALTIME_MODEL_MODULES)})")
    assert not bad, "imports against DESIGN.md:\n" + "\n".join(bad)


def test_realtime_imports_without_torch():
    modules = sorted(
        "sttr." + ".".join(p.relative_to(REPO).with_suffix("").parts).removesuffix(".__init__")
        for p in _files("realtime")
    )
    code = ("import sys; sys.modules['torch'] = None; sys.modules['tensorrt'] = None\n"
            "import importlib\n"
            f"for m in {modules!r}:\n    importlib.import_module(m)\n"
            "assert 'torch' not in [k for k, v in sys.modules.items() if v is not None]\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]


def test_importing_the_model_package_does_not_import_torch():
    code = "import sys; import sttr.model, sttr.model.skeleton, sttr.model.graph; assert 'torch' not in sys.modules"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=60)
    assert result.returncode == 0, result.stderr[-3000:]
