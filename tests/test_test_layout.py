"""The tests share helpers through `tests.support` only: no test module or conftest imports
from another test module or from a conftest (fixtures reach a package's tests through its
own conftest.py, which imports them from tests/support), and tests/ holds no helper module
outside tests/support."""

from __future__ import annotations

import ast
from pathlib import Path

TESTS = Path(__file__).resolve().parent
SUPPORT = "tests.support"


def _offending_imports(source: str) -> list[str]:
    """The imports of tests' own code not from tests.support (inside functions too):
    `from tests.whistles.test_whistles import blow`, `from tests.cases.conftest import
    Loop`, `import tests.conftest`, relative imports."""
    found: list[str] = []
    for node in ast.walk(ast.parse(source)):
        modules: list[str] = []
        if isinstance(node, ast.ImportFrom):
            modules = [node.module or ""] if node.level == 0 else ["." * node.level]
        elif isinstance(node, ast.Import):
            modules = [alias.name for alias in node.names]
        for module in modules:
            ours = module == "tests" or module.startswith(("tests.", "."))
            if ours and not (module == SUPPORT or module.startswith(SUPPORT + ".")):
                found.append(f"{node.lineno}: {module}")
    return found


def test_tests_import_shared_helpers_only_from_tests_support() -> None:
    offences = [
        f"{path.relative_to(TESTS.parent)}:{where}"
        for path in sorted(TESTS.rglob("*.py"))
        if path.relative_to(TESTS).parts[0] != "support"
        for where in _offending_imports(path.read_text(encoding="utf-8"))
    ]
    assert offences == []


def test_helper_modules_live_in_tests_support() -> None:
    """Outside tests/support, tests/ holds test modules, conftests and packages only."""
    strays = [
        str(path.relative_to(TESTS.parent))
        for path in sorted(TESTS.rglob("*.py"))
        if path.relative_to(TESTS).parts[0] != "support"
        and path.name not in ("__init__.py", "conftest.py")
        and not path.name.startswith("test_")
    ]
    assert strays == []


def test_the_checker_finds_imports_from_test_modules_and_conftests() -> None:
    source = (
        "from tests.whistles.test_whistles import blow\n"
        "from tests.cases.conftest import Loop\n"
        "from tests.assessment import oracle\n"
        "import tests.conftest\n"
        "from .conftest import month\n"
        "from tests.support.cases import Loop\n"
        "from tests.support import Headers\n"
        "from app.cases.models import Case\n"
        "def later():\n"
        "    from tests.conftest import migrate\n"
    )
    assert _offending_imports(source) == [
        "1: tests.whistles.test_whistles",
        "2: tests.cases.conftest",
        "3: tests.assessment",
        "4: tests.conftest",
        "5: .",
        "10: tests.conftest",
    ]
